"""`kubectl releaseguard` argument parsing: kubectl's flags before or after the
subcommand, and usage errors exit 2 (no cluster needed)."""

from __future__ import annotations

import pytest

from releaseguard.plugin.main import build_parser, main


def test_kubectl_flags_work_before_and_after_the_subcommand():
    parser = build_parser()
    after = parser.parse_args(["status", "g", "-n", "shop", "--context", "prod", "-o", "json"])
    assert (after.namespace, after.context, after.output, after.name) == (
        "shop",
        "prod",
        "json",
        "g",
    )
    before = parser.parse_args(["-n", "shop", "-o", "yaml", "timeline", "g", "--incident", "3"])
    assert (before.namespace, before.output, before.incident) == ("shop", "yaml", 3)
    default = parser.parse_args(["list", "-A"])
    assert (default.namespace, default.output, default.all_namespaces) == (None, "table", True)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["list", "-A", "-n", "shop"],
        ["status"],
        ["undo", "g"],
        ["contain", "g", "--timeout", "0"],
        ["status", "g", "-o", "wide"],
        ["timeline", "g", "--incident", "x"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


def test_cluster_data_in_square_brackets_is_printed_as_is(capsys):
    from rich.table import Table

    from releaseguard.plugin import commands

    table = Table("field")
    table.add_row("spec.rules[0].backendRefs[checkout-v2].weight")
    commands.console().print(table)
    assert "backendRefs[checkout-v2].weight" in capsys.readouterr().out
