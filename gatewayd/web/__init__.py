"""The web layer every connector stands on: the ASGI application, authentication, REST helpers,
the dashboard's shell, its templates and static files."""
