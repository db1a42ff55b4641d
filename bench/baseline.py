"""Baselines served by the same gunicorn settings as the product: a bare Flask JSON
endpoint and a bare endpoint answering ``success`` (what WeChat expects)."""

from __future__ import annotations

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/json")
def bare_json():
    return jsonify({"ok": True, "data": {"pong": 1}})


@app.post("/success")
def bare_success() -> str:
    return "success"
