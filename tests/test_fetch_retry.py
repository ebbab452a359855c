"""data/shared.py asks a busy server again: a real HTTP server on the loopback interface answers 503 (or
429) a few times, then the file; a server that stays busy ends in one clear error. Nothing leaves 127.0.0.1."""

import http.server
import threading

import pytest

from data import shared

BODY = b"the whole file\n" * 100


class Busy(http.server.BaseHTTPRequestHandler):
    """Answers the codes in `script` one request at a time, then 200 with BODY."""
    script, seen = [], []

    def do_GET(self):
        type(self).seen.append(self.path)
        code = type(self).script.pop(0) if type(self).script else 200
        self.send_response(code)
        if code == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(BODY) if code == 200 else 0))
        self.end_headers()
        if code == 200:
            self.wfile.write(BODY)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # straight to 127.0.0.1, never through a proxy
    monkeypatch.setattr(shared, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    Busy.script, Busy.seen = [], []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Busy)
    # a short poll: shutdown() waits for serve_forever to look again (0.5 s by default)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_waits_out_a_busy_server(server, tmp_path, capsys):
    Busy.script = [503, 429, 502]
    dest = shared.fetch(f"{server}/file.txt", str(tmp_path / "file.txt"), size=len(BODY))
    assert open(dest, "rb").read() == BODY and len(Busy.seen) == 4
    assert "HTTP 503" in capsys.readouterr().err


def test_a_server_that_stays_busy_or_refuses_fails_clearly(server, tmp_path):
    Busy.script = [503] * 10
    with pytest.raises(SystemExit, match=r"could not fetch http://127.0.0.1:\d+/f: HTTP 503 .*\(after 4 tries\)"):
        shared.fetch(f"{server}/f", str(tmp_path / "f"))
    assert len(Busy.seen) == 4 and not (tmp_path / "f").exists()
    Busy.script, Busy.seen = [403], []  # not a busy server: no second try
    with pytest.raises(SystemExit, match="HTTP 403"):
        shared.fetch(f"{server}/g", str(tmp_path / "g"))
    assert len(Busy.seen) == 1
    assert shared.retry_delay("5", 2) == 5 and shared.retry_delay("Wed, 21 Oct 2026 07:28:00 GMT", 2) == 2
    assert shared.retry_delay("100000", 2) == shared.MAX_RETRY_DELAY
