"""The pages' files, shipped inside the package.

`static/` holds /scan and /wallet (their HTML, scripts and style sheet), `console/` holds
/console, and `shared/` what both front ends use: `messages.json`, the one place where
every text they show (every problem code's plain words included) is written in Chinese
and English. service.api.pages and service.api.console serve them.
"""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: /console's page, its ES modules and style sheet (service.api.console).
CONSOLE_DIR = Path(__file__).resolve().parent / "console"
#: What the pages and the console share, served with each under its hashed name.
SHARED_DIR = Path(__file__).resolve().parent / "shared"
