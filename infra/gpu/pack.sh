#!/usr/bin/env bash
# Publishes what the GPU device check needs and splits it into parts that the device tool can carry, one per call
# (infra/gpu/README.md): the hubert-ecg CLI, self-contained for linux-x64 in the GPU flavour
# (-p:OnnxRuntimeFlavor=Gpu: Microsoft.ML.OnnxRuntime.Gpu.Linux, whose CUDA provider is built for CUDA 13), as
# app.tar.xz plus the xz-compressed CUDA provider library (cached by its SHA-256 under .local/gpu/cache: compressing its
# 289 MB takes minutes). The models are not packed: device-check.sh makes them there with `hubert-ecg model random`,
# and the PyTorch reference reads their weights from the ONNX files.
#
#   bash infra/gpu/pack.sh [--part-mib N] [--no-publish]
#
# XZ_LEVEL (default 6) sets xz's preset (the CUDA provider: 189 MB at 1, about 184 MB at 9, so a high level saves little).
#
# Writes .gpu-payload/ (ignored by git) in this checkout: part-00, part-01, ... and manifest.sha256 (each part's and the
# whole bundle's SHA-256), and prints the device calls. Run it in the checkout the device tool sends (the session's
# own), after committing: every call carries the working tree too, and the parts are sized to leave room for it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
payload="$root/.gpu-payload"
stage="$root/.local/gpu"
part_mib=auto
publish=1
level="${XZ_LEVEL:-6}"
while [ $# -gt 0 ]; do
    case "$1" in
        --part-mib) part_mib="$2"; shift 2 ;;
        --no-publish) publish=0; shift ;;
        *) echo "usage: bash infra/gpu/pack.sh [--part-mib N] [--no-publish]" >&2; exit 2 ;;
    esac
done
if ! git check-ignore -q "$payload/part-00"; then
    echo "error: .gpu-payload/ is not ignored by git here (its parts would travel in every call): add /.gpu-payload/ to .gitignore" >&2
    exit 2
fi
command -v xz >/dev/null || { echo "error: xz is needed (apt-get install xz-utils)" >&2; exit 2; }

app="$stage/publish"
if [ "$publish" = 1 ] || [ ! -x "$app/hubert-ecg" ]; then
    echo "== publishing hubert-ecg (GPU flavour, self-contained, linux-x64)"
    rm -rf "$app"
    dotnet publish src/Client/HubertEcg.Client.csproj --configuration Release --runtime linux-x64 --self-contained \
        -p:OnnxRuntimeFlavor=Gpu --output "$app" --nologo --verbosity quiet
    # The TensorRT provider is never asked for; the CUDA one is what the check loads.
    rm -f "$app/libonnxruntime_providers_tensorrt.so"
    {
        echo "build: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes in src)'), packed $(date -u +%Y-%m-%dT%H:%MZ)"
        echo "onnx runtime: Microsoft.ML.OnnxRuntime.Gpu.Linux $(sed -n 's:.*<OnnxRuntimeVersion>\(.*\)</OnnxRuntimeVersion>.*:\1:p' Directory.Packages.props)"
    } >"$app/.build-info"
fi
[ -f "$app/libonnxruntime_providers_cuda.so" ] || { echo "error: $app has no libonnxruntime_providers_cuda.so: not a GPU-flavour publish" >&2; exit 2; }

bundle="$stage/bundle"
rm -rf "$bundle"
mkdir -p "$bundle" "$stage/cache"
echo "== packing"
(cd "$app" && find . -type f ! -name .bundle -print0 | sort -z | xargs -0 sha256sum) >"$bundle/files.sha256"
tar -C "$app" --exclude=./libonnxruntime_providers_cuda.so --sort=name -cf - . | xz -T0 "-$level" >"$bundle/app.tar.xz"
cuda_sum="$(sha256sum "$app/libonnxruntime_providers_cuda.so" | cut -d' ' -f1)"
cached="$stage/cache/cuda-provider-$cuda_sum-$level.xz"
if [ ! -f "$cached" ]; then
    echo "   compressing the CUDA provider ($(du -m "$app/libonnxruntime_providers_cuda.so" | cut -f1) MiB; minutes, once per ONNX Runtime version)"
    xz -T0 "-$level" -c "$app/libonnxruntime_providers_cuda.so" >"$cached.tmp"
    mv "$cached.tmp" "$cached"
fi
ln -f "$cached" "$bundle/libonnxruntime_providers_cuda.so.xz" 2>/dev/null || cp "$cached" "$bundle/libonnxruntime_providers_cuda.so.xz"
tar -C "$bundle" -cf "$stage/bundle.tar" files.sha256 app.tar.xz libonnxruntime_providers_cuda.so.xz
bundle_bytes=$(stat -c %s "$stage/bundle.tar")

# What travels in every call anyway: tracked files and untracked files git does not ignore.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
if [ "$part_mib" = auto ]; then
    # 3 MiB to spare: files added to the tree before the calls, and the manifest carried beside each part.
    part_mib=$(( (64 * 1048576 - tree_bytes - 3 * 1048576) / 1048576 ))
fi
if [ "$part_mib" -lt 8 ]; then
    echo "error: only $part_mib MiB left per call beside the working tree ($tree_bytes bytes): make the tree smaller" >&2
    exit 2
fi
rm -rf "$payload"
mkdir -p "$payload"
split -b "${part_mib}M" -d -a 2 "$stage/bundle.tar" "$payload/part-"
(cd "$payload" && sha256sum part-*) >"$payload/manifest.sha256"
echo "$(sha256sum "$stage/bundle.tar" | cut -d' ' -f1)  bundle.tar" >>"$payload/manifest.sha256"
rm -f "$stage/bundle.tar"
mapfile -t parts < <(cd "$payload" && ls part-*)
echo "== $(( bundle_bytes / 1048576 )) MiB in ${#parts[@]} parts of at most $part_mib MiB (working tree $(( tree_bytes / 1024 )) KiB travels beside each)"
echo "   app.tar.xz $(( $(stat -c %s "$bundle/app.tar.xz") / 1048576 )) MiB, CUDA provider $(( $(stat -c %s "$bundle/libonnxruntime_providers_cuda.so.xz") / 1048576 )) MiB"
echo "== device calls, back to back (a machine left idle 30 s is given back and loses the parts):"
for i in "${!parts[@]}"; do
    carry="[\".gpu-payload/manifest.sha256\", \".gpu-payload/${parts[$i]}\"]"
    if [ "$i" -lt $(( ${#parts[@]} - 1 )) ]; then
        echo "   $((i + 1)). carry $carry  command: bash infra/gpu/device-check.sh --receive"
    else
        echo "   $((i + 1)). carry $carry  command: bash infra/gpu/device-check.sh   (timeout_s 560)"
    fi
done
