"""CPython's multiprocessing.connection, driven against shmkit's Listener and Client.

usage: conn_peer.py client ADDRESS KEY_HEX
       conn_peer.py listen unix:PATH|tcp KEY_HEX

ADDRESS is unix:PATH or tcp:HOST:PORT. `listen tcp` binds 127.0.0.1 port 0 and
prints the port on its first line. Either way the peer sends b"from python" and a
100 000-byte frame, expects the same two frames back with b"rust:" in front of the
first, and prints "OK". An AuthenticationError prints "AUTH <message>" and exits 3.
"""
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener


def parse(address):
    if address.startswith("unix:"):
        return address[5:]
    host, port = address[4:].rsplit(":", 1)
    return (host, int(port))


def talk(conn):
    big = bytes(i % 251 for i in range(100_000))
    conn.send_bytes(b"from python")
    conn.send_bytes(big)
    assert conn.recv_bytes() == b"rust:from python"
    assert conn.recv_bytes() == big
    print("OK", flush=True)


def main():
    mode, address, key = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
    try:
        if mode == "client":
            with Client(parse(address), authkey=key) as conn:
                talk(conn)
        else:
            where = ("127.0.0.1", 0) if address == "tcp" else parse(address)
            with Listener(where, authkey=key) as listener:
                if address == "tcp":
                    print(listener.address[1], flush=True)
                else:
                    print("ready", flush=True)
                with listener.accept() as conn:
                    talk(conn)
    except AuthenticationError as e:
        print("AUTH", e, flush=True)
        sys.exit(3)


main()
