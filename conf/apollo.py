"""A client for the Apollo configuration centre's HTTP API, layered over conf/.

Apollo's properties namespaces (``[apollo] namespaces``, the first one winning where two set
the same key) hold the dotted setting names as keys, ``loan.platform_fee_rate = 0.0120``;
each value is parsed and checked by the key's own parser in conf/settings.py.

Layering: conf files < environment < PORT < Apollo < command-line overrides (``--set``), so an
operator's explicit override still wins; a key set on the command line is never taken from
Apollo. A key deleted from Apollo falls back to what the lower layers give.

* Start-up (``start``): every namespace is read from ``GET /configs/{app}/{cluster}/{ns}``;
  every key is applied, reloadable or not, since nothing is built yet. Each answer is kept as
  a local copy (``cache_dir/<app>+<cluster>+<namespace>.json``, written to a temporary file
  and renamed over the old one). When Apollo cannot be reached the local copy is used, and
  without one the platform starts from conf/ alone; both with a warning.
* Run time: a daemon thread long-polls ``GET /notifications/v2`` (Apollo holds the request
  about 60 s and answers 304, or 200 with new notification ids when a namespace was
  released), fetches the namespaces that changed and applies them. Only keys marked
  ``reloadable`` change; any other changed key is logged as needing a restart. The new
  values must pass every check of a whole new Settings, which then replaces the current one
  in one swap (conf/live.py); otherwise nothing changes and the reason is logged.
* A bad value (unknown key, wrong type, out of range) is logged with its key and namespace and
  ignored: the key keeps the value it runs with. The poller never dies: errors are logged and
  it retries with a growing delay (up to a minute).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conf.live import LiveSettings
from conf.settings import (
    ConfigError,
    Settings,
    build_settings,
    flat_values,
    is_reloadable,
    parse_text,
)

log = logging.getLogger("conf.apollo")

#: Seconds to wait for a /configs answer (the long poll has its own, poll_timeout_seconds).
FETCH_TIMEOUT = 10.0
#: First and longest delay, in seconds, before trying again after Apollo failed to answer.
RETRY_SECONDS = (1.0, 60.0)


class ApolloUnavailable(Exception):
    """Apollo did not give a usable answer (down, timeout, HTTP error, malformed body)."""


# --- layering (pure: settings in, settings out) -----------------------------------------


def overlay(
    base: Settings,
    current: Settings,
    remote: Mapping[str, tuple[str, str]],
    *,
    pinned: frozenset[str] = frozenset(),
    startup: bool = False,
) -> Settings:
    """The Settings that `remote` ({"section.key": (text value, namespace)}) makes of `base`
    (conf/, environment, overrides), given the `current` ones; `current` itself when nothing
    may change. At start-up every key applies; later only reloadable ones."""
    running = flat_values(current)
    wanted = flat_values(base)
    for dotted, (raw, namespace) in remote.items():
        if dotted.startswith("apollo."):
            log.warning("%s: cannot be set from Apollo (namespace %s); ignored", dotted, namespace)
            continue
        if dotted in pinned:
            log.info("%s: set on the command line, which wins over Apollo; ignored", dotted)
            continue
        try:
            wanted[dotted] = parse_text(dotted, raw, source=f"Apollo namespace {namespace}")
        except ConfigError as exc:
            log.error("ignored a bad value from Apollo: %s", exc)
            if dotted in running:
                wanted[dotted] = running[dotted]
    if not startup:
        for dotted, value in wanted.items():
            if value != running[dotted] and not is_reloadable(dotted):
                log.warning(
                    "%s: changed in Apollo, but needs a restart to take effect; not applied",
                    dotted,
                )
                wanted[dotted] = running[dotted]
    if wanted == running:
        return current
    try:
        return build_settings(wanted)
    except ConfigError as exc:
        log.error("ignored an update from Apollo that fails a check: %s; nothing changed", exc)
        return current


def changes(old: Settings, new: Settings) -> dict[str, tuple[object, object]]:
    """{"section.key": (old, new)} of the keys that differ, secrets hidden as in describe()."""
    before, after = old.describe(), new.describe()
    return {k: (before[k], after[k]) for k in after if before[k] != after[k]}


# --- the client -------------------------------------------------------------------------


@dataclass
class _Namespace:
    name: str
    configurations: dict[str, str] = field(default_factory=dict)
    release_key: str = ""
    notification_id: int = -1


class ApolloClient:
    """Reads ``[apollo]`` namespaces into a LiveSettings and keeps them current."""

    def __init__(
        self,
        live: LiveSettings,
        *,
        fetch_timeout: float = FETCH_TIMEOUT,
        retry_seconds: tuple[float, float] = RETRY_SECONDS,
    ) -> None:
        conf = live.current().apollo
        self._live = live
        self._base_url = conf.meta_url.rstrip("/")
        self._app_id = conf.app_id
        self._cluster = conf.cluster
        self._cache_dir = Path(conf.cache_dir)
        self._poll_timeout = conf.poll_timeout_seconds
        self._fetch_timeout = fetch_timeout
        self._retry = retry_seconds
        self._namespaces = [_Namespace(name) for name in conf.namespaces]
        self._ip = _local_ip()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> None:
        """Read every namespace (from Apollo, else its local copy), apply them, and start
        the poller. Never raises because Apollo is down."""
        for ns in self._namespaces:
            try:
                self._fetch(ns)
            except ApolloUnavailable as exc:
                self._from_local_copy(ns, exc)
        self._apply(startup=True)
        self._thread = threading.Thread(target=self._run, name="apollo-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the poller; a long poll in flight is abandoned (the thread is a daemon and
        applies nothing once stopped)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the poller --------------------------------------------------------------------
    def _run(self) -> None:
        delay, failing = self._retry[0], False
        while not self._stop.is_set():
            try:
                changed = self._poll()
                if self._stop.is_set():
                    return
                updated = [ns for ns, nid in changed if self._fetch(ns, nid)]
                if updated and not self._stop.is_set():
                    self._apply(startup=False)
                if failing:
                    log.warning("Apollo at %s answers again", self._base_url)
                delay, failing = self._retry[0], False
            except Exception as exc:  # the poller must outlive any failure
                if isinstance(exc, ApolloUnavailable):
                    level = logging.DEBUG if failing else logging.WARNING
                    log.log(level, "Apollo unreachable (%s); retrying in %.0f s", exc, delay)
                else:
                    log.exception("Apollo poller failed; retrying in %.0f s", delay)
                failing = True
                self._stop.wait(delay)
                delay = min(delay * 2, self._retry[1])

    def _poll(self) -> list[tuple[_Namespace, int]]:
        """Long-poll notifications: [(namespace, new notification id)] of the released ones,
        [] when Apollo answers 304 (nothing changed while it held the request)."""
        notes = [
            {"namespaceName": ns.name, "notificationId": ns.notification_id}
            for ns in self._namespaces
        ]
        query = {
            "appId": self._app_id,
            "cluster": self._cluster,
            "notifications": json.dumps(notes, separators=(",", ":")),
            "ip": self._ip,
        }
        status, body = self._get(
            f"{self._base_url}/notifications/v2?{urllib.parse.urlencode(query)}",
            self._poll_timeout,
        )
        if status == 304:
            return []
        try:
            answer = json.loads(body)
            released = {
                _plain(note["namespaceName"]): int(note["notificationId"]) for note in answer
            }
        except (ValueError, TypeError, KeyError) as exc:
            raise ApolloUnavailable(f"malformed notifications answer ({exc})") from None
        return [(ns, released[ns.name]) for ns in self._namespaces if ns.name in released]

    # -- reading a namespace -----------------------------------------------------------
    def _fetch(self, ns: _Namespace, notification_id: int | None = None) -> bool:
        """Read `ns` from Apollo and keep a local copy; False when its release is unchanged.
        The notification id is taken only once the namespace is read, so a failed read is
        retried on the next poll."""
        path = "/".join(urllib.parse.quote(p, safe="") for p in (self._app_id, self._cluster))
        query = urllib.parse.urlencode({"releaseKey": ns.release_key, "ip": self._ip})
        status, body = self._get(
            f"{self._base_url}/configs/{path}/{urllib.parse.quote(ns.name, safe='')}?{query}",
            self._fetch_timeout,
        )
        changed = status != 304
        if changed:
            document = _config_document(body)
            ns.configurations = document["configurations"]
            ns.release_key = document["releaseKey"]
            self._save_local_copy(ns, document)
        if notification_id is not None:
            ns.notification_id = notification_id
        return changed

    def _get(self, url: str, timeout: float) -> tuple[int, bytes]:
        # S310: the URL is http(s) only, as the apollo.meta_url parser checks.
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return 304, b""
            raise ApolloUnavailable(f"HTTP {exc.code} from {_path_of(url)}") from None
        except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSError
            raise ApolloUnavailable(f"{exc} ({_path_of(url)})") from None

    # -- the local copy ----------------------------------------------------------------
    def _copy_path(self, ns: _Namespace) -> Path:
        name = "+".join(_safe(part) for part in (self._app_id, self._cluster, ns.name))
        return self._cache_dir / f"{name}.json"

    def _save_local_copy(self, ns: _Namespace, document: dict) -> None:
        path = self._copy_path(ns)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(document, out, ensure_ascii=False, indent=1, sort_keys=True)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("cannot write the local copy of Apollo namespace %s: %s", ns.name, exc)

    def _from_local_copy(self, ns: _Namespace, why: ApolloUnavailable) -> None:
        path = self._copy_path(ns)
        try:
            document = _config_document(path.read_bytes())
        except FileNotFoundError:
            log.warning(
                "Apollo unreachable at start-up (%s) and no local copy of namespace %s at %s: "
                "starting from conf/ and the environment",
                why,
                ns.name,
                path,
            )
            return
        except (OSError, ApolloUnavailable) as exc:
            log.warning(
                "Apollo unreachable at start-up (%s) and the local copy %s is unusable (%s): "
                "starting from conf/ and the environment",
                why,
                path,
                exc,
            )
            return
        ns.configurations = document["configurations"]
        ns.release_key = document["releaseKey"]
        log.warning(
            "Apollo unreachable at start-up (%s): namespace %s from its local copy %s (release %s)",
            why,
            ns.name,
            path,
            ns.release_key or "-",
        )

    # -- applying ----------------------------------------------------------------------
    def _apply(self, *, startup: bool) -> None:
        remote: dict[str, tuple[str, str]] = {}
        for ns in reversed(self._namespaces):  # the first namespace wins
            for key, value in ns.configurations.items():
                remote[key] = (value, ns.name)
        live = self._live
        old, new = live.replace(
            lambda current: overlay(live.base, current, remote, pinned=live.pinned, startup=startup)
        )
        if new is old:
            return
        for key, (before, after) in changes(old, new).items():
            log.info("%s = %s from Apollo (was %s)", key, after, before)
        if new.logging.level != old.logging.level:
            logging.getLogger().setLevel(new.logging.level)


def _config_document(body: bytes) -> dict:
    """A /configs answer (or local copy) checked: configurations of text values, releaseKey."""
    try:
        document = json.loads(body)
        configurations = document["configurations"]
        release_key = document.get("releaseKey") or ""
        if not isinstance(configurations, dict) or not isinstance(release_key, str):
            raise TypeError("configurations must be an object, releaseKey a string")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ApolloUnavailable(f"malformed configuration ({exc})") from None
    document["configurations"] = {str(k): str(v) for k, v in configurations.items()}
    document["releaseKey"] = release_key
    return document


def _plain(namespace: object) -> str:
    """Apollo names a properties namespace with or without its .properties suffix."""
    name = str(namespace)
    return name[: -len(".properties")] if name.endswith(".properties") else name


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part) or "_"


def _path_of(url: str) -> str:
    """The URL without its query, for log lines."""
    return url.partition("?")[0]


def _local_ip() -> str:
    """This host's address, sent as Apollo's ``ip`` (used for grey releases)."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
