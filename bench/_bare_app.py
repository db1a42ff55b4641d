"""The bare baseline for bench_quiz.py: one Flask JSON endpoint, nothing else."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/bare")
def bare():
    return jsonify({"ok": True, "data": {"status": "submitted"}})


@app.get("/bare")
def bare_get():
    return jsonify({"ok": True, "data": {"rank": 1}})
