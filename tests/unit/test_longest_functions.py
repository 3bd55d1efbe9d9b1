"""tools/longest_functions.py, and the rule it keeps: no function in the pure domain is
60 lines or longer (issue 10)."""

from pathlib import Path

import longest_functions


def _source(lines: int) -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 1))
    return f"def long_one():\n{body}\n\nasync def short_one():\n    return 1\n"


def test_lengths_count_from_def_to_the_last_line(tmp_path: Path):
    file = tmp_path / "m.py"
    file.write_text(_source(61))

    found = sorted(longest_functions.functions(file), reverse=True)

    assert [(length, where.split()[-1]) for length, where, _ in found] == [
        (61, "long_one"),
        (2, "short_one"),
    ]


def test_a_function_over_the_limit_fails_the_check(tmp_path: Path, capsys):
    (tmp_path / "m.py").write_text(_source(61))

    assert longest_functions.main([str(tmp_path)]) == 1
    assert "long_one" in capsys.readouterr().out
    assert longest_functions.main([str(tmp_path), "--limit", "61"]) == 0


def test_every_domain_function_is_under_sixty_lines(repo_root: Path, capsys):
    domain = repo_root / "operator" / "releaseguard" / "domain"

    assert longest_functions.main([str(domain), "--limit", "59"]) == 0, capsys.readouterr().out
