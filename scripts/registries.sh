# Sourced by scripts/demo and scripts/image: loopback registries (Debian's docker-registry) that the
# script's EXIT trap stops. Needs WORK (a scratch directory) set by the caller.
#   start_registry NAME VAR   starts one on a free 127.0.0.1 port and stores the port in VAR
# It must run in the calling shell, not in $(...): a subshell would keep the PID to itself and the
# registry would outlive the script.
REGISTRY_PIDS=()
stop_registries() { for p in "${REGISTRY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; REGISTRY_PIDS=(); }

start_registry() {
    local name="$1" port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    mkdir -p "$WORK/$name"
    printf 'version: 0.1\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp: {addr: "127.0.0.1:%s"}\nlog: {level: error}\n' \
        "$WORK/$name/data" "$port" >"$WORK/$name/config.yml"
    docker-registry serve "$WORK/$name/config.yml" >"$WORK/$name/log" 2>&1 &
    REGISTRY_PIDS+=($!)
    for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
    printf -v "$2" '%s' "$port"
}
