#!/usr/bin/env bash
# Build the local control plane's binaries from Go modules, once per machine.
#
# The binaries land in a cache OUTSIDE the checkout, keyed by component and
# version, so a fresh clone (CI) reuses what an earlier run built:
#   $RELEASEGUARD_CACHE/bin/kubernetes-<v>/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
#   $RELEASEGUARD_CACHE/bin/etcd-<v>/etcd
#   $RELEASEGUARD_CACHE/bin/kwok-<v>/{kwok,stages/*.yaml}
# A component counts as built only when its ".complete" marker exists, so an
# interrupted build is redone rather than half-used.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${RELEASEGUARD_CACHE:-$HOME/.cache/releaseguard}"
LOGDIR="$CACHE/build-logs"
mkdir -p "$LOGDIR"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false"

fail() {  # component, log
  echo "devcluster: building $1 FAILED; log: $2" >&2
  echo "---- last 30 lines of $2 ----" >&2
  tail -n 30 "$2" >&2 || true
  exit 1
}

# Print the modules that a go.mod maps to local paths ("=> ./x" or "=> ../x").
local_replaces() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
mods = set()
for block in re.findall(r"^replace\s*\((.*?)^\)", text, re.S | re.M):
    for line in block.splitlines():
        m = re.match(r"[ \t]*(\S+)(?:[ \t]+\S+)?[ \t]*=>[ \t]*\.\.?/", line)
        if m:
            mods.add(m.group(1))
for m in re.findall(r"^replace[ \t]+([^\s(]\S*)(?:[ \t]+\S+)?[ \t]*=>[ \t]*\.\.?/", text, re.M):
    mods.add(m)
print("\n".join(sorted(mods)))
PY
}

# Run "$@" in a subshell with errexit, output to a log; on failure report and exit.
# (Not "( ... ) || fail": bash ignores errexit inside a command whose status is
# tested, so a failed step would be skipped over and the build marked complete.)
run_logged() {  # component, log, command...
  local component="$1" log="$2" rc
  shift 2
  set +e
  ( set -euo pipefail; "$@" ) >"$log" 2>&1
  rc=$?
  set -e
  [[ $rc -eq 0 ]] || fail "$component" "$log"
}

require_files() {  # component, log, file... : every file must exist and be non-empty
  local component="$1" log="$2" f
  shift 2
  for f in "$@"; do
    [[ -s "$f" ]] || { echo "devcluster: $f missing after build" >>"$log"; fail "$component" "$log"; }
  done
}

gomod_of() {  # module@version -> path of its go.mod in the module cache
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])'
}

kubernetes_body() {  # out work
  local out="$1" work="$2"
  cd "$work"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local staging_version="v0.${K8S_VERSION#v1.}"
  local kmod; kmod="$(gomod_of "k8s.io/kubernetes@$K8S_VERSION")"
  {
    echo "module releaseguard.local/kubernetes-bin"
    echo
    echo "go $(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and maps
    # them to ./staging; a dependent module must map them to the
    # published v0.X.Y instead.
    local_replaces "$kmod" | while read -r m; do echo "	$m => $m $staging_version"; done
    echo ")"
  } > go.mod
  cat go.mod
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local pkgs=(); for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  go get "${pkgs[@]/%/@$K8S_VERSION}"
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  mkdir -p "$out"
  go build -trimpath -ldflags "$ld" -o "$out/" "${pkgs[@]}"
}

build_kubernetes() {
  local out="$CACHE/bin/kubernetes-$K8S_VERSION" log="$LOGDIR/kubernetes-$K8S_VERSION.log"
  [[ -f "$out/.complete" ]] && return 0
  echo "devcluster: building kubernetes $K8S_VERSION (cold: 10-25 min; log $log)" >&2
  local work; work="$(mktemp -d)"
  run_logged "kubernetes $K8S_VERSION" "$log" kubernetes_body "$out" "$work"
  require_files "kubernetes $K8S_VERSION" "$log" \
    "$out/kube-apiserver" "$out/kube-controller-manager" "$out/kube-scheduler" "$out/kubectl"
  rm -rf "$work"
  touch "$out/.complete"
}

etcd_body() {  # out work
  local out="$1" work="$2"
  cd "$work"
  local emod; emod="$(gomod_of "go.etcd.io/etcd/server/v3@$ETCD_VERSION")"
  {
    echo "module releaseguard.local/etcd-bin"
    echo
    echo "go $(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo
    echo "replace ("
    # etcd's server maps its sibling modules to ../x; use the published tag.
    # Only the /v3 modules can take a v3 tag; the others are not in the build graph.
    local_replaces "$emod" | grep '/v3$' | while read -r m; do echo "	$m => $m $ETCD_VERSION"; done
    echo ")"
  } > go.mod
  cat go.mod
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  mkdir -p "$out"
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

build_etcd() {
  local out="$CACHE/bin/etcd-$ETCD_VERSION" log="$LOGDIR/etcd-$ETCD_VERSION.log"
  [[ -f "$out/.complete" ]] && return 0
  echo "devcluster: building etcd $ETCD_VERSION (log $log)" >&2
  local work; work="$(mktemp -d)"
  run_logged "etcd $ETCD_VERSION" "$log" etcd_body "$out" "$work"
  require_files "etcd $ETCD_VERSION" "$log" "$out/etcd"
  rm -rf "$work"
  touch "$out/.complete"
}

KWOK_STAGES=(node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
             pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)

kwok_body() {  # out
  local out="$1"
  mkdir -p "$out/stages"
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # The kwok binary has no built-in stages; its module ships kwokctl's.
  local dir; dir="$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  for s in "${KWOK_STAGES[@]}"; do
    cp "$dir/kustomize/stage/$s" "$out/stages/"
  done
  chmod -R u+w "$out/stages"
}

build_kwok() {
  local out="$CACHE/bin/kwok-$KWOK_VERSION" log="$LOGDIR/kwok-$KWOK_VERSION.log"
  [[ -f "$out/.complete" ]] && return 0
  echo "devcluster: building kwok $KWOK_VERSION (log $log)" >&2
  run_logged "kwok $KWOK_VERSION" "$log" kwok_body "$out"
  local stages=(); for s in "${KWOK_STAGES[@]}"; do stages+=("$out/stages/${s##*/}"); done
  require_files "kwok $KWOK_VERSION" "$log" "$out/kwok" "${stages[@]}"
  touch "$out/.complete"
}

# helm renders charts/ in the chart e2e test; its go.mod has no replace lines.
helm_body() {  # out
  GOBIN="$1" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_helm() {
  local out="$CACHE/bin/helm-$HELM_VERSION" log="$LOGDIR/helm-$HELM_VERSION.log"
  [[ -f "$out/.complete" ]] && return 0
  echo "devcluster: building helm $HELM_VERSION (log $log)" >&2
  mkdir -p "$out"
  run_logged "helm $HELM_VERSION" "$log" helm_body "$out"
  require_files "helm $HELM_VERSION" "$log" "$out/helm"
  touch "$out/.complete"
}

case "${1:-all}" in
  all) build_kubernetes; build_etcd; build_kwok; build_helm ;;
  helm) build_helm ;;
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  *) echo "usage: $0 [all|kubernetes|etcd|kwok|helm]" >&2; exit 2 ;;
esac
