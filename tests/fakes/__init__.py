"""In-process fake WeChat and DingTalk API servers for tests."""
