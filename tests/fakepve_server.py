"""A fake Proxmox VE (the ``fakepve`` package) for tests: templates, a token, and a server process.

``add_templates`` gives any FakePve a QEMU cloud-init template (9000), an LXC
template (9001), an LXC OS template volume and our API token.
``FakePveServer`` runs ``python -m tests.fakepve_server`` as its own process
(what a worker subprocess can reach) with a time scale and ``task_seconds``:
the templates' disks live on a slow Ceph pool, so clones, starts and
container builds take that many PVE seconds, and the driver's UPID polling
really waits. ``backup_pve`` adds what fakepve lacks for backups: ``POST
/nodes/{node}/vzdump`` (a task that locks the guest "backup", then stores a
``backup/vzdump-…`` volume with the vmid, size and notes in the storage, keeping
the guest's config with it) and a QEMU restore (``POST /nodes/{node}/qemu`` with
``archive`` and ``force``: the stopped guest gets the backed-up config back).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

QEMU_TEMPLATE = 9000
LXC_TEMPLATE = 9001
OSTEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
TOKEN_ID = "controlplane@pve!workers"
TOKEN_SECRET = "5f0c1b7e-6a4e-4b53-9d2f-2d1c1e0a9f11"
CEPH = "ceph-pool"


def _install_qemu_resize() -> None:
    """fakepve 0.5 has LXC's ``PUT .../lxc/{vmid}/resize`` but answers QEMU's from its schema
    without changing anything. This adds it the way qemu-server's ``API2/Qemu.pm`` resize_vm
    does (PVE 8/9): a ``resize`` task; ``size`` absolute or ``+N``; the drive must exist and not
    be a CD-ROM; the config lock and digest are checked; a shrink fails with "shrinking disks is
    not supported"; the same size does nothing; the drive's ``size=`` is rewritten. Installed on
    the class before any fake starts (its routes are built at start)."""
    from fakepve import server as fake
    from fakepve.lxc import format_size, parse_size
    from fakepve.model import PveError, TaskError
    from fakepve.qemu import drives_of

    if getattr(fake.FakePve, "_cp_qemu_resize", False):
        return
    original = fake.FakePve._register_stateful

    async def qemu_resize(self, request):
        p = await fake.params(request)
        vm = self._vm(request, "VM.Config.Disk")
        user = request[fake.USER]
        self.need_quorum()
        disk, text = p.get("disk"), str(p.get("size") or "")
        extend = text.startswith("+")
        wanted = parse_size(text.lstrip("+"))
        if not disk or wanted is None:
            raise PveError(400, "Parameter verification failed.", {"size": "invalid format - value does not match"})

        def plan():
            if p.get("digest") and p["digest"] != vm.digest():
                raise PveError(500, "detected modified configuration - file changed by other user? Try again.")
            if not p.get("skiplock"):
                self._check_lock(vm)
            value = vm.config.get(disk)
            if value is None or disk not in [key for key, _, _ in drives_of(vm.config)]:
                raise PveError(500, f"disk '{disk}' does not exist")
            if "media=cdrom" in str(value):
                raise PveError(500, "you can't resize a cdrom")
            size = next((parse_size(part[5:]) for part in str(value).split(",") if part.startswith("size=")), None)
            size = size or 0
            new = size + wanted if extend else wanted
            if new < size:
                raise PveError(500, "shrinking disks is not supported")
            return value, size, new

        plan()

        async def body():
            try:
                value, size, new = plan()
            except PveError as exc:
                raise TaskError(exc.message.strip()) from exc
            if new == size:
                return f"disk {disk} already has {format_size(size)}"
            parts = [part for part in str(value).split(",") if not part.startswith("size=")]
            vm.config[disk] = ",".join([*parts, f"size={format_size(new)}"])
            return f"resized {disk} to {format_size(new)}"

        return fake.ok(await self.task(vm.node, "resize", vm.vmid, user, body, vm=vm))

    def register(self, router, formats):
        for prefix in formats:
            router.add_put(prefix + "/nodes/{node}/qemu/{vmid}/resize", self._cp_qemu_resize_handler)
        return original(self, router, formats)

    fake.FakePve._cp_qemu_resize_handler = qemu_resize
    fake.FakePve._register_stateful = register
    fake.FakePve._cp_qemu_resize = True


_install_qemu_resize()


def add_templates(pve, *, storage: str = "local-lvm") -> None:
    pve.add_vm(
        QEMU_TEMPLATE,
        "debian-12-cloudinit",
        template=True,
        config={
            "scsi0": f"{storage}:base-{QEMU_TEMPLATE}-disk-0,size=4G",
            "ide2": f"{storage}:vm-{QEMU_TEMPLATE}-cloudinit,media=cdrom",
            "net0": "virtio=BC:24:11:00:90:00,bridge=vmbr0",
            "boot": "order=scsi0",
            "agent": "1",
            "cores": 1,
            "memory": 512,
            "tags": "debian",
        },
    )
    pve.add_ct(
        LXC_TEMPLATE,
        "debian-12-ct",
        template=True,
        config={
            "rootfs": f"{storage}:base-{LXC_TEMPLATE}-disk-0,size=4G",
            "net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:90:01,ip=dhcp,type=veth",
        },
    )
    pve.apitokens[TOKEN_ID] = TOKEN_SECRET
    pve.store_file("local", OSTEMPLATE.split("/", 1)[1], 120 * 2**20, content="vztmpl")


def backup_pve(base):
    """A FakePve subclass with vzdump and QEMU restore (see the module's docstring)."""
    from fakepve import TaskError
    from fakepve.routing import die

    class BackupPve(base):
        backup_configs: dict

        def _routes_backups(self):
            return [("POST", "/nodes/{node}/vzdump", self._vzdump)]

        async def _vzdump(self, v, user):
            vmid = int(v["vmid"])
            guest, storage = self.guest(vmid), v.get("storage") or "local"
            if guest is None:
                raise die(f"unable to find VM {vmid}")
            if storage not in self.storages:
                raise die(f"storage '{storage}' does not exist")
            kind = "qemu" if self.vm(vmid) else "lxc"
            stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.gmtime())
            volname = f"backup/vzdump-{kind}-{vmid}-{stamp}.vma.zst"
            configs = self.__dict__.setdefault("backup_configs", {})

            async def body():
                if guest.lock:
                    raise TaskError(f"can't lock VM {vmid}: it is locked ({guest.lock})")
                guest.lock, guest.config["lock"] = "backup", "backup"
                try:
                    await self.pause(self.backup_seconds)
                finally:
                    guest.lock = None
                    guest.config.pop("lock", None)
                configs[f"{storage}:{volname}"] = dict(guest.config)
                self.storages[storage].setdefault("volumes", {})[volname] = {
                    "content": "backup",
                    "size": 300 * 2**20,
                    "ctime": int(time.time()),
                    "format": "vma.zst",
                    "vmid": vmid,
                    "notes": v.get("notes-template") or "",
                }
                return f"INFO: Finished Backup of VM {vmid}"

            return await self.task(v["node"], "vzdump", vmid, user, body, lock=False)

        async def _qm_create(self, v, user):
            if not v.get("archive"):
                return await super()._qm_create(v, user)
            vmid, archive = int(v["vmid"]), v["archive"]
            vm = self.vm(vmid)
            configs = self.__dict__.get("backup_configs", {})
            if archive not in configs:
                raise die(f"unable to restore VM {vmid} - no such archive {archive}")
            if vm is not None and not v.get("force"):
                raise die(f"unable to restore VM {vmid} - VM {vmid} already exists")
            if vm is not None and vm.status == "running":
                raise die(f"unable to restore VM {vmid} - VM is running")

            async def body():
                self._qm_lock(vm, "create")
                await self.pause(self.backup_seconds)
                vm.config = dict(configs[archive])
                self._qm_lock(vm, None)
                return f"restore {archive} to VM {vmid}: done"

            return await self.task(v["node"], "qmrestore", vmid, user, body, vm=vm)

    BackupPve.backup_seconds = 10
    return BackupPve


def settings_for(host: str, port: int, cafile: str, overrides: dict | None = None) -> dict:
    """The Hypervisor.connection settings a driver needs to reach this fake."""
    return {"host": host, "port": port, "ca_bundle": cafile, "node": "pve1", "poll_seconds": 0.05} | (overrides or {})


def credentials() -> dict:
    return {"token_id": TOKEN_ID, "token_secret": TOKEN_SECRET}


class FakePveServer:
    """The fake as a process on 127.0.0.1 with a free port and a certificate we can verify."""

    def __init__(self, workdir: Path, *, time_scale: float, task_seconds: float, host: str = "127.0.0.1"):
        from fakepve.certs import make_cert

        self.host, self.time_scale, self.task_seconds = host, time_scale, task_seconds
        with socket.socket() as sock:
            sock.bind((host, 0))
            self.port = sock.getsockname()[1]
        self.certfile, self.keyfile, _ = make_cert(str(workdir), hosts=(host,))
        self.log_path = workdir / "fakepve.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> FakePveServer:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.fakepve_server", "--host", self.host, "--port", str(self.port)]
                + ["--time-scale", str(self.time_scale), "--task-seconds", str(self.task_seconds)]
                + ["--cert", self.certfile, "--key", self.keyfile],
                cwd=Path(__file__).resolve().parent.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while b"listening on" not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fakepve did not start:\n{self.log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        return self

    def requests(self, fragment: str) -> list[str]:
        """Access-log lines of requests whose line contains ``fragment``."""
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if fragment in line]

    def settings(self, **overrides) -> dict:
        return settings_for(self.host, self.port, self.certfile, overrides)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


async def serve(args) -> None:
    from fakepve import FakePve

    pve = backup_pve(FakePve)(host=args.host, port=args.port)
    pve.time_scale = args.time_scale
    pve.add_ceph_storage(CEPH)
    pve.ceph_slow(args.task_seconds, health="HEALTH_OK")
    pve.ct_secs.update(create=args.task_seconds, destroy=args.task_seconds / 2)
    pve.backup_seconds = args.task_seconds
    add_templates(pve, storage=CEPH)
    await pve.start(args.cert, args.key)
    print(f"fakepve listening on {pve.url}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="fakepve with our templates and slow tasks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--time-scale", type=float, default=0.05, help="real seconds per PVE second")
    parser.add_argument("--task-seconds", type=float, default=20, help="PVE seconds a clone, start or build takes")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # aiohttp's access log: what clients asked
    try:
        asyncio.run(serve(parser.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
