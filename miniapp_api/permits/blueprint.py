"""The permits blueprint object (routes live in the sibling modules)."""

from core.api import ApiBlueprint

bp = ApiBlueprint("permits", __name__, tag="permits", url_prefix="/permits")
