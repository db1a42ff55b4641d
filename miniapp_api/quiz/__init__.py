"""Quiz API: trainers manage the bank, papers and competitions (manage.py); workers
practise, take attempts and read their points and portraits (learn.py)."""

from __future__ import annotations

from core.api import ApiBlueprint

bp = ApiBlueprint("quiz", __name__, tag="quiz", url_prefix="/quiz")

from miniapp_api.quiz import learn, manage  # noqa: E402, F401  (routes register on bp)
