"""medr1's training and evaluation kit: the Med-R1 protocol, rewards, data, GRPO/SFT training and evaluation."""

__version__ = "0.1.0"
