"""The test run is offline: non-loopback connections are refused here and inside notebook kernels."""
import socket
import threading

import nbformat
import pytest
from nbclient import NotebookClient

from course_netguard import NetworkBlocked

UNREACHABLE = ("203.0.113.7", 443)  # TEST-NET-3: documentation address, never routed


def test_guard_refuses_outside_addresses():
    with pytest.raises(NetworkBlocked, match="offline"):
        socket.create_connection(UNREACHABLE, timeout=1)


def test_guard_allows_loopback():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()))
    thread.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    thread.join(timeout=5)
    server.close()
    assert accepted


def test_guard_and_offline_hub_inside_a_notebook_kernel():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import os, socket\n"
            "try:\n"
            f"    socket.create_connection({UNREACHABLE!r}, timeout=1)\n"
            "    print('CONNECTED')\n"
            "except Exception as err:\n"
            "    print(type(err).__name__)\n"
            "print('HF_HUB_OFFLINE=' + os.environ.get('HF_HUB_OFFLINE', ''))"
        )
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "NetworkBlocked" in text and "CONNECTED" not in text
    assert "HF_HUB_OFFLINE=1" in text
