#!/usr/bin/env bash
# Prepare a Debian host for tflite-forge's full test suite: container engines,
# qemu user emulation, cross compilers, and the Python package itself.
# Idempotent: safe to run again; each step checks before it acts.
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*"; }
need_root() { [ "$(id -u)" = 0 ] || { echo "setup-host: run as root (apt-get, dockerd, binfmt_misc need it)" >&2; exit 2; }; }
need_root

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
  docker.io podman runc            # the two container engines (podman needs runc here)
  qemu-user-static binfmt-support  # run arm64/armhf binaries and containers under emulation
  debootstrap                      # base images with no registry (invoke image --bootstrap)
  crossbuild-essential-arm64 crossbuild-essential-armhf gcc-riscv64-linux-gnu g++-riscv64-linux-gnu
  cmake ninja-build ccache scons   # host-side builds in the toolchain and smoke tests
  gnupg binutils file             # signing SHA256SUMS, objcopy for debug info
  iproute2                        # the second dockerd's own bridge (ip link add)
  openssh-server openssh-client   # a builder reached as ssh://root@tflite-forge-ssh-builder (this host)
  redis-server                    # tests and bench of the shared compile cache (--ccache-remote)
)
# A host whose docker already answers (GitHub runners: Docker's moby packages) keeps its engine:
# Debian's docker.io and runc would conflict with moby's and replace them.
if docker info >/dev/null 2>&1; then
  log "docker already answers: not installing docker.io (nor runc, when one is on PATH)"
  keep=()
  for p in "${PACKAGES[@]}"; do
    case $p in docker.io) ;; runc) command -v runc >/dev/null 2>&1 || keep+=("$p") ;; *) keep+=("$p") ;; esac
  done
  PACKAGES=("${keep[@]}")
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# dockerd: start in the background unless a daemon already answers.
DOCKER=/usr/bin/docker
if ! "$DOCKER" info >/dev/null 2>&1; then
  log "starting dockerd"
  nohup /usr/sbin/dockerd >/var/log/tflite-forge-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" info >/dev/null 2>&1 || { echo "setup-host: dockerd did not start; see /var/log/tflite-forge-dockerd.log" >&2; exit 1; }
fi

# A second dockerd on its own socket, data root, exec root and bridge: the builder the --builder
# tests spread a matrix over (no iptables: builds run with --network=none anyway). Not --bridge=none:
# a dockerd started so deletes the host's docker0, and with it the first daemon's default network.
DOCKER2_SOCK=/run/tflite-forge-docker2.sock
if ! "$DOCKER" -H "unix://$DOCKER2_SOCK" info >/dev/null 2>&1; then
  log "starting a second dockerd on $DOCKER2_SOCK"
  mkdir -p /var/lib/tflite-forge-docker2 /run/tflite-forge-docker2
  if ! ip link show tfforge-br2 >/dev/null 2>&1; then
    ip link add tfforge-br2 type bridge && ip addr add 172.31.2.1/24 dev tfforge-br2 && ip link set tfforge-br2 up
  fi
  nohup setsid /usr/sbin/dockerd --host "unix://$DOCKER2_SOCK" --data-root /var/lib/tflite-forge-docker2 \
    --exec-root /run/tflite-forge-docker2 --pidfile /run/tflite-forge-docker2/dockerd.pid \
    --bridge=tfforge-br2 --iptables=false --ip-masq=false >/var/log/tflite-forge-docker2.log 2>&1 &
  for _ in $(seq 1 60); do "$DOCKER" -H "unix://$DOCKER2_SOCK" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" -H "unix://$DOCKER2_SOCK" info >/dev/null 2>&1 \
    || { echo "setup-host: the second dockerd did not start; see /var/log/tflite-forge-docker2.log" >&2; exit 1; }
fi

# binfmt_misc + qemu: foreign-arch binaries and containers run under emulation.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
for arch in aarch64 arm riscv64; do
  conf=/usr/lib/binfmt.d/qemu-$arch.conf
  if [ -f "$conf" ] && [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$arch" ]; then
    log "registering qemu-$arch with binfmt_misc"
    grep -v '^#' "$conf" | head -n1 > /proc/sys/fs/binfmt_misc/register
  fi
done

# podman on this kind of host: runc, cgroupfs, ulimits no higher than the host's.
mkdir -p /etc/containers
if [ ! -f /etc/containers/containers.conf ] || ! grep -q 'tflite-forge' /etc/containers/containers.conf; then
  log "writing /etc/containers/containers.conf for podman"
  cat > /etc/containers/containers.conf <<'CONF'
# written by tflite-forge ci/setup-host.sh: this host lacks CAP_SYS_RESOURCE and systemd
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi

# podman's API service on a socket of its own: a builder driven through `podman --remote --url`.
PODMAN_SOCK=/run/tflite-forge-podman.sock
if ! podman --remote --url "unix://$PODMAN_SOCK" version >/dev/null 2>&1; then
  log "starting podman system service on $PODMAN_SOCK"
  nohup setsid podman system service --time=0 "unix://$PODMAN_SOCK" >/var/log/tflite-forge-podman-service.log 2>&1 &
  for _ in $(seq 1 30); do podman --remote --url "unix://$PODMAN_SOCK" version >/dev/null 2>&1 && break; sleep 1; done
  podman --remote --url "unix://$PODMAN_SOCK" version >/dev/null 2>&1 \
    || { echo "setup-host: podman system service did not start; see /var/log/tflite-forge-podman-service.log" >&2; exit 1; }
fi

# An ssh builder: this host's dockerd through docker's ssh transport, as ssh://root@tflite-forge-ssh-builder
# (an sshd of its own on 127.0.0.1:2222, a key of its own, a Host entry in root's ssh config).
SSH_KEY=/root/.ssh/tflite-forge-builder
mkdir -p /root/.ssh /etc/tflite-forge && chmod 700 /root/.ssh
[ -f "$SSH_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C tflite-forge-builder -f "$SSH_KEY"
[ -f /etc/tflite-forge/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/tflite-forge/ssh_host_ed25519_key
grep -qF "$(cat "$SSH_KEY.pub")" /root/.ssh/authorized_keys 2>/dev/null || cat "$SSH_KEY.pub" >> /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
if ! grep -q '^Host tflite-forge-ssh-builder$' /root/.ssh/config 2>/dev/null; then
  cat >> /root/.ssh/config <<'SSHCONF'
# written by tflite-forge ci/setup-host.sh: the ssh builder of the --builder tests (this host)
Host tflite-forge-ssh-builder
  HostName 127.0.0.1
  Port 2222
  User root
  IdentityFile /root/.ssh/tflite-forge-builder
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
SSHCONF
  chmod 600 /root/.ssh/config
fi
if ! ssh -o BatchMode=yes tflite-forge-ssh-builder true >/dev/null 2>&1; then
  log "starting sshd on 127.0.0.1:2222 for the ssh builder"
  mkdir -p /run/sshd
  /usr/sbin/sshd -o ListenAddress=127.0.0.1 -o Port=2222 -o HostKey=/etc/tflite-forge/ssh_host_ed25519_key \
    -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no -o PidFile=/run/tflite-forge-sshd.pid
  for _ in $(seq 1 20); do ssh -o BatchMode=yes tflite-forge-ssh-builder true >/dev/null 2>&1 && break; sleep 0.5; done
  ssh -o BatchMode=yes tflite-forge-ssh-builder true \
    || { echo "setup-host: the ssh builder (sshd on 127.0.0.1:2222) does not answer" >&2; exit 1; }
fi

# The project and its test extra.
cd "$(dirname "$0")/.."
log "installing tflite-forge with its test extra"
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
log "done"
