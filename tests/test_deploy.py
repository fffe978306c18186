"""``docs/deploy.md`` as an operator copies it: the nginx site passes ``nginx -t``, the systemd units
``systemd-analyze verify``, and the commands and settings in them are ones ``openepay`` accepts.

The files are read out of the page itself (each is a code block under a line naming its path),
so what is tested is what is documented. Only what cannot exist on a test machine is replaced:
the TLS certificate (a throwaway one) and the install path (this checkout's ``openepay``).
Needs Debian's ``nginx-light`` and ``systemd`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import datetime
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openepay.config import Settings
from openepay.web.middleware import MAX_BODY_BYTES

DOC = Path(__file__).parents[1] / "docs" / "deploy.md"
FILE_BLOCK = re.compile(r"^`(/[^`]+)`:\n\n```\w*\n(.*?)^```", re.S | re.M)
SITE = "/etc/nginx/sites-available/openepay"
UNITS = ("/etc/systemd/system/openepay-web@.service", "/etc/systemd/system/openepay-worker@.service")
ENV_FILE = "/etc/openepay/openepay.env"
INSTALLED = "/opt/openepay/.venv/bin/openepay"
CERTS = "/etc/letsencrypt/live/pay.example.com/"


def documented() -> dict[str, str]:
    return dict(FILE_BLOCK.findall(DOC.read_text()))


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert found, f"{name} is not installed (apt-get install nginx-light systemd)"
    return found


def throwaway_certificate(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pay.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def test_the_page_documents_the_site_both_units_and_the_settings():
    assert {SITE, *UNITS, ENV_FILE} <= set(documented())


def test_the_nginx_site_passes_nginx_t(tmp_path):
    throwaway_certificate(tmp_path)
    (tmp_path / "site.conf").write_text(documented()[SITE].replace(CERTS, f"{tmp_path}/"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    checked = subprocess.run(
        [tool("nginx"), "-t", "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_the_site_caps_bodies_where_the_gateway_does():
    caps = set(re.findall(r"client_max_body_size (\d+)m;", documented()[SITE]))
    assert caps == {"1"} and 1024 * 1024 == MAX_BODY_BYTES


def test_the_site_serves_the_phones_over_plain_http_and_everything_else_over_https():
    plain = next(block for block in documented()[SITE].split("server {") if "listen 80;" in block)
    assert "location = /appHeart" in plain and "location = /appPush" in plain
    assert "return 301 https://$host$request_uri;" in plain
    assert "/qrpool/device/" not in plain


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    entry_point = Path(sys.executable).with_name("openepay")
    for unit, instance in zip(UNITS, ("8000", "1"), strict=True):
        text = documented()[unit].replace(INSTALLED, str(entry_point))
        path = tmp_path / Path(unit).name.replace("@.", f"@{instance}.")
        path.write_text(text)
        checked = subprocess.run(
            [tool("systemd-analyze"), "verify", str(path)], capture_output=True, text=True, timeout=60
        )
        # verify exits 0 even for lines it ignores; any complaint at all is a mistake in the page.
        assert (checked.returncode, checked.stderr.strip()) == (0, ""), checked.stderr


def test_the_units_run_commands_openepay_accepts(tmp_path):
    """Each ``ExecStart`` with ``--help`` added: typer refuses an option that does not exist."""
    for unit in UNITS:
        [command] = re.findall(r"^ExecStart=(.*)$", documented()[unit], re.M)
        program, *arguments = shlex.split(command.replace("%i", "8000"))
        assert program == INSTALLED
        ran = subprocess.run(
            [sys.executable, "-m", "openepay", *arguments, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert ran.returncode == 0, ran.stderr


def test_the_settings_file_names_real_settings():
    names = re.findall(r"^OPENEPAY_([A-Z_]+)=", documented()[ENV_FILE], re.M)
    assert names and {name.lower() for name in names} <= set(Settings.model_fields)
