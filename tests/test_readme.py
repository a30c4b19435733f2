"""The README's "Trying it out" runs as written, in order, without an error.

Its shell commands are taken from README.md and run one after the other by bash: the `touchlink`
commands against a fresh embedded instance (a temporary folder, SQLite), the `curl` commands
against `touchlink run` serving that instance, as the Quick start leaves it. Only what a reader
fills in changes: the port (`localhost:5000` is the free port the server got), `tl_...` and
`$SHOP_KEY` (the keys the `touchlink keys create` commands printed) and `<tl_click>` (the click id
the redirect handed a tracked link's destination). A `curl` must get an answer that is no error,
and the redirect the one its comment says.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.serving import ROOT, Server, running

SECTION = "## Trying it out"
README_PORT = "localhost:5000"


def readme_commands() -> list[str]:
    """The commands of the section's first shell block, continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found is not None, f"no shell block under {SECTION!r}"
    commands, pending = [], ""
    for line in found.group(1).splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if line.rstrip().endswith("\\"):
            continue
        command, pending = pending.strip(), ""
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Short URLs on `localhost` and the port served, as `touchlink run` makes them; the commands
    # get the same TOUCHLINK_BASE_URL, as on port 5000 they would without it.
    with running(tmp_path_factory.mktemp("readme"), name="localhost") as served:
        yield served


def _run(server: Server, command: str) -> tuple[int, str]:
    done = subprocess.run(
        ["bash", "-c", command], env=server.env, cwd=server.instance,
        capture_output=True, text=True, timeout=120, check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _log(server: Server) -> str:
    """The end of the server's output, for a failure's message."""
    return server.output.read_text()[-3000:]


def _refusal(command: str, status: int, output: str) -> str | None:
    """Why a command that ran did not do what the README says, or None."""
    if status != 0:
        return f"exit status {status}"
    if command.startswith("curl -s") and '"error"' in output:
        return "answered an error"
    if command.startswith("curl -i") and "/lyon" in command:
        redirect = "Location: https://shop.example.com/lyon?utm_source=store-flyer-lyon"
        if not output.startswith("HTTP/1.1 302") or f"{redirect}&utm_medium=physical" not in output:
            return "not the redirect its comment says"
    return None


def _click_id(server: Server) -> str:
    """The click id the redirect hands the destination of the link that tracks conversions."""
    short = f"{server.base}/lyon"
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{redirect_url}", short],
        capture_output=True, text=True, timeout=30, check=True,
    )
    [click] = parse_qs(urlsplit(done.stdout).query)["tl_click"]
    _wait_until_stored(server, click.split(".", 1)[0])  # as it is by the time a shop posts it
    return click


def _wait_until_stored(server: Server, click_id: str) -> None:
    database = server.instance / "touchlink.db"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as conn:
            if conn.execute("SELECT 1 FROM clicks WHERE click_id = ?", (click_id,)).fetchone():
                return
        time.sleep(0.05)
    raise AssertionError(f"the click {click_id} was never stored")


def test_trying_it_out_runs_in_order_without_an_error(server: Server) -> None:
    port = server.base.rsplit(":", 1)[1]
    previous = ""
    problems: list[str] = []
    commands = readme_commands()
    assert len(commands) >= 10

    for written in commands:
        command = written.replace(README_PORT, f"localhost:{port}")
        if command.startswith(("export KEY=tl_", "export SHOP_KEY=tl_")):
            name = command.split()[1].split("=")[0]
            server.env[name] = previous.split()[0]  # the key `touchlink keys create` printed
            command = f"export {name}={server.env[name]}"
        if "<tl_click>" in command:
            command = command.replace("<tl_click>", _click_id(server))
        status, output = _run(server, command)
        refused = _refusal(command, status, output)
        if refused:
            problems.append(f"{written.splitlines()[0]}\n  {refused}: {output[:300]}")
        previous = output

    assert problems == [], "\n".join(problems) + "\n" + _log(server)
    assert (server.instance / "lyon.svg").read_text().startswith("<")
    assert (server.instance / "lyon.pdf").read_bytes().startswith(b"%PDF")


def test_the_section_is_found_and_its_commands_joined() -> None:
    commands = readme_commands()

    assert commands[0].startswith("touchlink keys create")
    assert all(not command.endswith("\\") for command in commands)
    assert any(command.startswith("curl -s -X POST") and "-d '" in command for command in commands)
