"""The /scan and /wallet pages: static files shipped inside the package.

`static/` holds the HTML of both pages, their scripts and style sheet, and
`messages.json`, the one place where every text the pages show (every problem code
included) is written in Chinese and English. service.api.pages serves them.
"""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: /console's page, its ES modules, style sheet and messages.json (service.api.console).
CONSOLE_DIR = Path(__file__).resolve().parent / "console"
