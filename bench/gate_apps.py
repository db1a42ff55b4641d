"""WSGI apps that bench_gate.py serves with gunicorn: the real app and a bare baseline."""

from __future__ import annotations


def full():
    from core.app import create_app

    return create_app()


def bare():
    """A bare Flask JSON endpoint: parse the same body, answer an envelope of the same size."""
    from flask import Flask, jsonify, request

    app = Flask("bare")

    @app.post("/api/v1/passes/gate/scan")
    def scan():
        body = request.get_json()
        return jsonify(
            {
                "ok": True,
                "data": {
                    "result": "ok",
                    "reason": None,
                    "message": "核验通过，请通行",
                    "detail": None,
                    "pass_id": len(body["qr"]),
                    "holder": "人员 张*",
                    "require_attention": False,
                    "replayed": False,
                },
            }
        )

    return app
