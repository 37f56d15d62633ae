"""shequ — community digital platform (社区数字化平台) for Chinese subdistricts."""

__version__ = "0.1.0"
