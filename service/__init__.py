"""youdai: partner discounts for preferential-treatment card holders."""

__version__ = "0.1.0"
