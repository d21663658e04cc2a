"""Where deployments found the uvicorn factory: `botkit.serve:app_from_env` is `botkit.app:app_from_env`."""

from botkit.app import DEFAULT_BOT_NAME, app_from_env, bot_from_settings, build_app, preflight
from botkit.runtime import Runtime

__all__ = ["DEFAULT_BOT_NAME", "Runtime", "app_from_env", "bot_from_settings", "build_app", "preflight"]
