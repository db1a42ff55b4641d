"""``flask wechat menu push``: publish the official-account menu through the API."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

wechat_cli = AppGroup("wechat", help="WeChat official account.")
menu_cli = AppGroup("menu", help="Official-account menu.")
wechat_cli.add_command(menu_cli)


def _menu() -> dict:
    from bot import router
    from bot.menu import build_menu

    return build_menu(router.menu_keys())


@menu_cli.command("show")
def menu_show() -> None:
    """Print the menu that ``push`` would publish."""
    click.echo(json.dumps(_menu(), ensure_ascii=False, indent=2))


@menu_cli.command("push")
def menu_push() -> None:
    """Replace the account's menu with the one built from the deployed commands."""
    from bot.menu import problems
    from core.platforms.http import PlatformError

    menu = _menu()
    wrong = problems(menu)
    if wrong:
        raise click.ClickException("菜单不符合微信的限制，未发布：" + "；".join(wrong))
    try:
        current_app.extensions["zhizhi"].wechat_oa().create_menu(menu)
    except PlatformError as exc:
        raise click.ClickException(f"微信接口返回错误 {exc.errcode}: {exc.errmsg}") from exc
    keys = [s["key"] for b in menu["button"] for s in b["sub_button"]]
    click.echo(f"menu published: {len(menu['button'])} buttons, keys {', '.join(keys)}")
