#!/usr/bin/python3
"""libtorrent (rasterbar 2.0) driver for bitfiber's interop tests; loopback only.

  lt_client.py seed   --torrent T --dir D [--port P] [--connect H:P ...] [--reannounce S] [--dht [--dht-node H:P ...]]
  lt_client.py leech  (--torrent T | --magnet URI) --dir D [--port P] [--connect H:P ...] [--keep-seeding] [--dht ...]
  lt_client.py info   T                      -> one JSON line: infoHash, name, pieceLength, files
  lt_client.py create --path P --out T [--piece-size N] [--tracker URL ...] [--version v1|v2|hybrid] [--pad]

seed/leech print "READY port=N" once listening (a seeder: once its data is verified), a JSON
status line every --interval seconds, JSON "alert" lines for tracker/peer/errors, and a leecher
prints "FINISHED" and exits 0 when complete. Stdin takes commands, one a line:
"connect HOST PORT", "reannounce", "status", "download-limit BYTES_PER_SECOND" (0: none),
"dht-node HOST PORT" (add_dht_node), "dht-announce" (force_dht_announce).
--dht runs libtorrent's DHT on the listen port, on loopback, with no bootstrap node but the
--dht-node ones, and prints its DHT alerts (and DHT counters in the status lines).
"""
import argparse
import json
import sys
import threading
import time

import libtorrent as lt


# The command thread and the main loop both emit: one locked write per line, or print's separate
# write of the newline lets two lines run together.
_emit_lock = threading.Lock()


def emit(obj):
    line = (obj if isinstance(obj, str) else json.dumps(obj)) + "\n"
    with _emit_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def session(port, dht, encryption):
    # Everything that is not plain TCP on 127.0.0.1 is off: the tests must see only loopback traffic.
    settings = {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "listen_system_port_fallback": False,
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        # Every peer is 127.0.0.1, distinguished only by port.
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "min_announce_interval": 1,
        "seeding_outgoing_connections": True,
        "connection_speed": 50,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.connect_notification,
    }
    if encryption == "forced-rc4":
        # Message stream encryption both ways, RC4 payload only: plain handshakes are refused.
        settings.update({
            "out_enc_policy": int(lt.enc_policy.pe_forced),
            "in_enc_policy": int(lt.enc_policy.pe_forced),
            "allowed_enc_level": int(lt.enc_level.pe_rc4),
        })
    if dht:
        settings.update({
            "enable_dht": True,
            # No public router: only the nodes the test gives.
            "dht_bootstrap_nodes": "",
            # Every node is 127.0.0.1, distinguished only by port, and has a random id (no BEP 42).
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_prefer_verified_node_ids": False,
            "dht_enforce_node_id": False,
            "dht_ignore_dark_internet": False,
            "alert_mask": settings["alert_mask"]
            | lt.alert.category_t.dht_notification
            | lt.alert.category_t.dht_log_notification
            | lt.alert.category_t.dht_operation_notification,
        })
    return lt.session(settings)


DHT_CATEGORIES = (lt.alert.category_t.dht_notification
                  | lt.alert.category_t.dht_log_notification
                  | lt.alert.category_t.dht_operation_notification)


def status_of(h, ses):
    s = h.status()
    return {
        "event": "status",
        "state": str(s.state),
        "progress": round(s.progress, 4),
        "num_peers": s.num_peers,
        "num_seeds": s.num_seeds,
        "download_rate": s.download_rate,
        "upload_rate": s.upload_rate,
        "total_done": s.total_done,
        "total_upload": s.all_time_upload,
        "is_seeding": s.is_seeding,
        "has_metadata": s.has_metadata,
        "port": ses.listen_port(),
        "error": str(s.errc.message()) if s.errc.value() != 0 else None,
    }


def parse_endpoint(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def read_commands(h, ses):
    for line in sys.stdin:
        words = line.split()
        try:
            if words[:1] == ["connect"] and len(words) == 3:
                h.connect_peer((words[1], int(words[2])))
                emit({"event": "command", "connect": "%s:%s" % (words[1], words[2])})
            elif words == ["reannounce"]:
                h.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
                emit({"event": "command", "reannounce": True})
            elif words[:1] == ["download-limit"] and len(words) == 2:
                # The torrent's own limit: libtorrent exempts local peers from the session's.
                h.set_download_limit(int(words[1]))
                emit({"event": "command", "download-limit": int(words[1])})
            elif words[:1] == ["dht-node"] and len(words) == 3:
                ses.add_dht_node((words[1], int(words[2])))
                emit({"event": "command", "dht-node": "%s:%s" % (words[1], words[2])})
            elif words == ["dht-announce"]:
                h.force_dht_announce()
                emit({"event": "command", "dht-announce": True})
            elif words == ["status"]:
                emit(status_of(h, ses))
            elif words:
                emit({"event": "command-error", "line": line.strip()})
        except Exception as e:  # a bad command must not kill the client
            emit({"event": "command-error", "line": line.strip(), "error": str(e)})


def run(args, seeding):
    ses = session(args.port, args.dht, args.encryption)
    for node in args.dht_node:
        ses.add_dht_node(parse_endpoint(node))
    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.dir
    # Not auto-managed: start now and never get queued.
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    h = ses.add_torrent(params)

    for peer in args.connect:
        h.connect_peer(parse_endpoint(peer))
    threading.Thread(target=read_commands, args=(h, ses), daemon=True).start()

    ready = False
    last_status = 0.0
    last_reannounce = time.monotonic()
    while True:
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_failed_alert):
                emit({"event": "alert", "type": type(a).__name__, "message": a.message()})
                sys.exit(2)
            if a.category() & (lt.alert.category_t.error_notification
                               | lt.alert.category_t.tracker_notification
                               | lt.alert.category_t.connect_notification
                               | (DHT_CATEGORIES if args.dht else 0)) \
                    or isinstance(a, (lt.torrent_finished_alert, lt.torrent_error_alert)):
                emit({"event": "alert", "type": type(a).__name__, "message": a.message()})
        s = h.status()
        if not ready and ses.listen_port() != 0 and (not seeding or s.is_seeding):
            ready = True
            emit("READY port=%d" % ses.listen_port())
        now = time.monotonic()
        if now - last_status >= args.interval:
            last_status = now
            emit(status_of(h, ses))
        if seeding and args.reannounce > 0 and now - last_reannounce >= args.reannounce:
            last_reannounce = now
            h.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
        if not seeding and s.is_seeding and s.has_metadata:
            emit(status_of(h, ses))
            emit("FINISHED")
            if not args.keep_seeding:
                # Pausing flushes and closes the files before the process exits.
                h.pause()
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not h.status().paused:
                    time.sleep(0.05)
                return
            seeding = True


def info(args):
    ti = lt.torrent_info(args.torrent)
    fs = ti.files()
    files = [{
        "path": fs.file_path(i),
        "size": fs.file_size(i),
        "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
    } for i in range(fs.num_files())]
    hashes = ti.info_hashes()
    emit({
        # The 20 bytes used on the wire and at trackers: v1, or the truncated v2 hash (BEP 52).
        "infoHash": str(hashes.v1) if hashes.has_v1() else str(hashes.v2)[:40],
        "infoHashV2": str(hashes.v2) if hashes.has_v2() else None,
        "name": ti.name(),
        "pieceLength": ti.piece_length(),
        "numPieces": ti.num_pieces(),
        "totalSize": ti.total_size(),
        "private": ti.priv(),
        "trackers": [t.url for t in ti.trackers()],
        "files": files,
    })


def create(args):
    import os
    fs = lt.file_storage()
    lt.add_files(fs, args.path)
    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}[args.version]
    if args.pad:
        flags |= lt.create_torrent.canonical_files
    ct = lt.create_torrent(fs, args.piece_size, flags)
    for tier, url in enumerate(args.tracker):
        ct.add_tracker(url, tier)
    if args.private:
        ct.set_priv(True)
    ct.set_creator("bitfiber interop")
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(args.path)))
    with open(args.out, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    info(argparse.Namespace(torrent=args.out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("seed", "leech"):
        c = sub.add_parser(mode)
        c.add_argument("--torrent")
        c.add_argument("--magnet")
        c.add_argument("--dir", required=True)
        c.add_argument("--port", type=int, default=0, help="0: let the OS pick; READY says which")
        c.add_argument("--connect", action="append", default=[], help="HOST:PORT to dial")
        c.add_argument("--interval", type=float, default=1.0, help="seconds between status lines")
        c.add_argument("--reannounce", type=float, default=0, help="seeder: re-announce every S seconds")
        c.add_argument("--keep-seeding", action="store_true", help="leecher: keep seeding once finished")
        c.add_argument("--encryption", choices=("enabled", "forced-rc4"), default="enabled",
                       help="enabled: libtorrent's default (tries MSE, takes plain); forced-rc4: RC4 streams only")
        c.add_argument("--dht", action="store_true", help="run the DHT on the listen port (loopback, no public router)")
        c.add_argument("--dht-node", action="append", default=[], help="HOST:PORT of a DHT node to start from (with --dht)")
    sub.add_parser("info").add_argument("torrent")
    c = sub.add_parser("create")
    c.add_argument("--path", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--piece-size", type=int, default=0, help="0: libtorrent picks")
    c.add_argument("--tracker", action="append", default=[], help="one tier each")
    c.add_argument("--version", choices=("v1", "v2", "hybrid"), default="v1")
    c.add_argument("--pad", action="store_true", help="pad files to piece boundaries (v1)")
    c.add_argument("--private", action="store_true")
    args = p.parse_args()
    if args.mode in ("seed", "leech") and bool(args.torrent) == bool(args.magnet):
        p.error("give exactly one of --torrent and --magnet")
    if args.mode == "info":
        info(args)
    elif args.mode == "create":
        create(args)
    else:
        run(args, args.mode == "seed")


if __name__ == "__main__":
    main()
