"""``openepay import``: bring merchants over from another gateway, dry run first, a summary after."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from openepay.cli_audit import audited
from openepay.cli_runtime import fail, with_gateway
from openepay.config import Settings

if TYPE_CHECKING:
    from openepay.gateway import Gateway
    from openepay.importers.rainbow import ImportReport, RainbowDatabase, RainbowMerchant

import_app = typer.Typer(help="Bring merchants over from another gateway.", no_args_is_help=True)


@import_app.command("rainbow")
def import_rainbow(
    mysql_url: str = typer.Option(
        ..., "--mysql-url", help="Rainbow Epay's database, e.g. mysql://root:PASSWORD@127.0.0.1:3306/epay."
    ),
    table_prefix: str = typer.Option("pay_", help="Rainbow's table prefix ($dbconfig['dbqz'] in config.php, plus _)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be imported; write nothing."),
    orders_since: str | None = typer.Option(
        None,
        help="Also read the orders since then (30d, or a time like 2026-11-01): check every notify_url they "
        "used against this gateway's rules, and keep the paid ones as history for the shops' queries.",
    ),
) -> None:
    """Create Rainbow's merchants here with their pid, key, RSA key and state, so their shops keep working.

    Merchants already here are reported and left as they are, so running it again is safe.
    """
    from openepay.cli import parse_moment
    from openepay.importers.rainbow import (
        RainbowError,
        connection_arguments,
        import_history,
        import_merchants,
        read_rainbow,
    )

    settings = Settings()
    since = None
    if orders_since is not None:
        try:
            # Rainbow writes its times in its server's local time: OPENEPAY_TIMEZONE, Asia/Shanghai unless set.
            since = parse_moment(orders_since, settings.zone).astimezone(settings.zone)
        except ValueError:
            raise fail(f"cannot read the time {orders_since!r}") from None
    try:
        where = connection_arguments(mysql_url)
        rainbow = read_rainbow(
            mysql_url,
            prefix=table_prefix,
            orders_since=since,
            zone=settings.zone,
            allow_private=settings.notify_allow_private,
        )
    except RainbowError as exc:
        raise fail(str(exc)) from None

    typer.echo(f"Rainbow Epay: database {where['database']} on {where['host']}:{where['port']}, tables {table_prefix}*")
    typer.echo(f"{len(rainbow.merchants)} merchant(s) in {table_prefix}user")
    if dry_run:
        typer.echo("dry run: nothing is written")

    async def bring_over(gateway: Gateway) -> ImportReport:
        report = await import_merchants(gateway, rainbow.merchants, dry_run=dry_run)
        await import_history(gateway, rainbow.history, report, dry_run=dry_run)
        return report

    # A real import is one audit entry (never the database URL, which may hold its password).
    imported = audited(
        "import.rainbow",
        f"import:rainbow/{where['database']}",
        bring_over,
        note=lambda done: {
            "merchants_created": [merchant.pid for merchant in done.created],
            "orders_imported": done.orders_imported,
        },
    )
    report = with_gateway(settings, bring_over if dry_run else imported)
    _print_merchants(rainbow, report, dry_run)
    if since is not None:
        _print_sites(rainbow, since.strftime("%Y-%m-%d %H:%M"))
        _print_history(rainbow, report, dry_run)
    _print_summary(report, dry_run)


def _describe(merchant: RainbowMerchant) -> str:
    traits = ["enabled" if merchant.enabled else f"disabled: {merchant.why_disabled}"]
    if merchant.rsa_public_key:
        traits.append("RSA only: V2 API only" if merchant.rsa_only else "RSA key")
    if merchant.refund_enabled:
        traits.append("refunds")
    return ", ".join(traits)


def _print_merchants(rainbow: RainbowDatabase, report: ImportReport, dry_run: bool) -> None:
    created = {merchant.pid for merchant in report.created}
    for merchant in rainbow.merchants:
        if merchant.pid in created:
            action = f"{'would create' if dry_run else 'created'} ({_describe(merchant)})"
        elif merchant.pid in report.already_same_key:
            action = "already here with the same key: left as it is"
        elif merchant.pid in report.already_other_key:
            action = (
                f"already here with ANOTHER key: left as it is (to give it Rainbow's key: "
                f"openepay merchant set-key {merchant.pid} --key ...)"
            )
        else:
            action = f"skipped: {'; '.join(merchant.problems)}"
        typer.echo(f"  {merchant.pid:>6}  {merchant.name}: {action}")
        for note in merchant.notes:
            typer.echo(f"          note: {note}")


def _print_sites(rainbow: RainbowDatabase, since: str) -> None:
    typer.echo(f"notification addresses of the {rainbow.orders_read} order(s) since {since}:")
    refused = 0
    for pid, sites in sorted(rainbow.sites.items()):
        for site in sites:
            verdict = "ok" if site.refused is None else f"REFUSED here: {site.refused}"
            refused += site.refused is not None
            typer.echo(f"  {pid:>6}  {site.origin} ({site.orders} order(s)): {verdict}")
    if refused:
        typer.echo(
            f"{refused} address(es) would be refused: orders asking to be notified there are refused at creation "
            "(see docs/migrating.md, keeping the old notify URLs)"
        )


def _print_history(rainbow: RainbowDatabase, report: ImportReport, dry_run: bool) -> None:
    """The paid orders kept as history, so shops' queries about them keep their answers."""
    line = (
        f"paid orders kept as history: {report.orders_imported} {'to import' if dry_run else 'imported'}, "
        f"{report.orders_already_here} already here"
    )
    if report.orders_of_merchants_left_out:
        line += f", {report.orders_of_merchants_left_out} of merchants not imported"
    if report.orders_repeated:
        line += f", {report.orders_repeated} repeating an earlier order's out_trade_no"
    typer.echo(line)
    for reason, count in sorted(rainbow.history_left_out.items()):
        typer.echo(f"  {count} left out: {reason}")


def _print_summary(report: ImportReport, dry_run: bool) -> None:
    already = len(report.already_same_key) + len(report.already_other_key)
    typer.echo(
        f"summary: {len(report.created)} {'to create' if dry_run else 'created'}, {already} already here "
        f"({len(report.already_same_key)} same key, {len(report.already_other_key)} another key), "
        f"{len(report.skipped)} skipped"
    )
