"""Qwen2-VL-2B-Instruct's architecture with random weights: GPU-scale benchmarks without the model hub.

One place for the architecture, so that the evaluation and training benchmarks measure the same model.
Token ids come from the offline tokenizer of ``train.tiny_model``; the weights are random, and the config
says so (``medr1_tiny_random``), so the app and model cards treat it as meaningless.
"""

from __future__ import annotations

# Qwen/Qwen2-VL-2B-Instruct config.json (architecture only).
QWEN2_VL_2B_TEXT = {
    "vocab_size": 151936,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]},
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "sliding_window": 32768,
    "max_window_layers": 28,
    "attention_dropout": 0.0,
}
QWEN2_VL_2B_VISION = {
    "depth": 32,
    "embed_dim": 1280,
    "mlp_ratio": 4,
    "num_heads": 16,
    "in_chans": 3,
    "hidden_size": 1536,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "hidden_act": "quick_gelu",
}


def random_2b_config(tokenizer, shrink: bool = False):
    """A ``Qwen2VLConfig`` of Qwen2-VL-2B's architecture with ``tokenizer``'s special-token ids.

    ``shrink`` keeps every width but uses one text layer and one vision block: a CPU-sized dry run of the
    exact code path (same vocabulary, hidden sizes, heads, image tokens) for machines without a GPU.
    """
    from transformers import Qwen2VLConfig

    def token(name: str) -> int:
        return tokenizer.convert_tokens_to_ids(name)

    text = dict(
        QWEN2_VL_2B_TEXT,
        bos_token_id=token("<|endoftext|>"),
        eos_token_id=token("<|im_end|>"),
        pad_token_id=token("<|endoftext|>"),
    )
    vision = dict(QWEN2_VL_2B_VISION)
    if shrink:
        text.update(num_hidden_layers=1, max_window_layers=1)
        vision["depth"] = 1
    config = Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=token("<|image_pad|>"),
        video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"),
        vision_end_token_id=token("<|vision_end|>"),
    )
    config.medr1_tiny_random = True  # random weights: the app and the model card must say so
    return config
