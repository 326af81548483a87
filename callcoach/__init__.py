"""callcoach: a self-hosted Bitrix24 app that listens to sales calls and coaches the people who make them."""

__version__ = "0.1.0"
