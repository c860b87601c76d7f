#!/usr/bin/env bash
# The GPU device check (infra/gpu/README.md): run from the repository root on a machine with one NVIDIA GPU, the CUDA 13
# runtime and cuDNN 9 (PyTorch beside them for its numbers), no .NET SDK and no network. It reassembles the payload
# that infra/gpu/pack.sh split into .gpu-payload/ (verifying every part's SHA-256), finds the CUDA and cuDNN
# libraries, makes random-weight small and base models with the published hubert-ecg, checks CUDA against CPU outputs
# (fp32: 1e-4 relative; fp16 against fp32: probabilities within 5e-3, embedding cosine >= 0.9999), and prints windows
# per second at batch 64 and 256 (fp32 TF32 off/on, fp16; without and with CUDA graphs) next to a PyTorch module of the
# same network with the same weights. Without a usable GPU it says so, checks CPU-only, and still exits 0 when the
# CPU path works.
#
#   bash infra/gpu/device-check.sh            the whole check (all parts must be here)
#   bash infra/gpu/device-check.sh --receive  only verify the parts that arrived so far and list the missing ones
#
# Environment: BENCH_SECONDS (2) measuring time per row; BUDGET_S (450) no new measurement starts after this many
# seconds of the check; WORK (/tmp/hubert-ecg-gpu) where it unpacks and writes; SIZES ("small base"); BATCHES
# ("64 256"); PAYLOAD (.gpu-payload); OUT (set by the device tool) receives the log and results.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
here="$root/infra/gpu"
payload="${PAYLOAD:-$root/.gpu-payload}"
work="${WORK:-/tmp/hubert-ecg-gpu}"
seconds="${BENCH_SECONDS:-2}"
budget="${BUDGET_S:-450}"
sizes="${SIZES:-small base}"
batches="${BATCHES:-64 256}"
mode=check
[ "${1:-}" = --receive ] && mode=receive
mkdir -p "$work"
out="${OUT:-$work/out}"
mkdir -p "$out"
log="$out/device-check.log"
results="$out/results.jsonl"
if [ "$mode" = check ]; then
    : >"$results"
    exec > >(tee "$log") 2>&1
fi
say() { printf '== %s [%ss]\n' "$*" "$SECONDS"; }
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# --- 1. the parts -------------------------------------------------------------------------------------------------
manifest="$payload/manifest.sha256"
if [ ! -f "$manifest" ]; then
    echo "error: $manifest is missing: run infra/gpu/pack.sh here first and carry .gpu-payload/manifest.sha256 in every call" >&2
    exit 2
fi
missing=(); bad=()
while read -r sum name; do
    [ "$name" = bundle.tar ] && continue
    if [ ! -f "$payload/$name" ]; then
        missing+=("$name")
    elif [ "$(sha256sum "$payload/$name" | cut -d' ' -f1)" != "$sum" ]; then
        bad+=("$name")
    fi
done <"$manifest"
parts_total=$(grep -vc ' bundle.tar$' "$manifest")
echo "payload: $((parts_total - ${#missing[@]} - ${#bad[@]})) of $parts_total parts here and intact${missing:+; missing: ${missing[*]}}${bad:+; CORRUPT (resend): ${bad[*]}}"
if [ "$mode" = receive ]; then
    [ ${#bad[@]} -eq 0 ] || exit 1
    exit 0
fi
if [ ${#missing[@]} -gt 0 ] || [ ${#bad[@]} -gt 0 ]; then
    echo "error: cannot reassemble: send the missing or corrupt parts (a machine given back between calls loses the parts it had: resend them all, calls back to back)" >&2
    exit 2
fi

# --- 2. reassemble --------------------------------------------------------------------------------------------------
bundle_sum="$(awk '$2 == "bundle.tar" {print $1}' "$manifest")"
app="$work/app"
if [ -f "$app/.bundle" ] && [ "$(cat "$app/.bundle")" = "$bundle_sum" ]; then
    say "payload already unpacked in $app"
else
    say "reassembling"
    rm -rf "$app" "$work/bundle"
    mkdir -p "$work/bundle" "$app"
    # The parts in manifest order make bundle.tar again; its own checksum is checked before anything is unpacked.
    mapfile -t names < <(awk '$2 != "bundle.tar" {print $2}' "$manifest")
    (cd "$payload" && cat "${names[@]}") >"$work/bundle.tar"
    got="$(sha256sum "$work/bundle.tar" | cut -d' ' -f1)"
    if [ "$got" != "$bundle_sum" ]; then
        echo "error: the reassembled bundle's SHA-256 is $got, the manifest says $bundle_sum" >&2
        exit 2
    fi
    tar -x -C "$work/bundle" -f "$work/bundle.tar" && rm -f "$work/bundle.tar" || { echo "error: cannot unpack the bundle" >&2; exit 2; }
    unxz_to() {  # unxz_to FILE.xz DEST: xz when installed, else Python's lzma
        if command -v xz >/dev/null; then xz -d -T0 -c "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"), 1 << 20)' "$1" "$2"; fi
    }
    unxz_to "$work/bundle/app.tar.xz" "$work/bundle/app.tar" && tar -x -C "$app" -f "$work/bundle/app.tar" || { echo "error: cannot unpack app.tar.xz" >&2; exit 2; }
    unxz_to "$work/bundle/libonnxruntime_providers_cuda.so.xz" "$app/libonnxruntime_providers_cuda.so" || { echo "error: cannot unpack the CUDA provider" >&2; exit 2; }
    (cd "$app" && sha256sum -c --quiet "$work/bundle/files.sha256") || { echo "error: unpacked files differ from the published ones" >&2; exit 2; }
    chmod +x "$app/hubert-ecg"
    echo "$bundle_sum" >"$app/.bundle"
    rm -rf "$work/bundle"
fi
cli="$app/hubert-ecg"
cat "$app/.build-info" 2>/dev/null
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# --- 3. the GPU, CUDA 13 and cuDNN 9 ------------------------------------------------------------------------------------
say "looking for the GPU, CUDA 13 and cuDNN 9"
gpu_name=""
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    gpu_name="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
    echo "GPU: $gpu_name"
else
    echo "GPU: none (nvidia-smi absent or sees no device)"
fi
# Folders that may hold the libraries: the loader's cache, the CUDA toolkit, and Python wheels (PyTorch's nvidia-*).
candidates=(/usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu)
while read -r sp; do
    [ -d "$sp/nvidia" ] && while read -r d; do candidates+=("$d"); done < <(find "$sp/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null)
    [ -d "$sp/torch/lib" ] && candidates+=("$sp/torch/lib")
done < <(python3 -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))' 2>/dev/null | sort -u)
lib_dirs=()
missing_libs=()
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9 libcuda.so.1; do
    found=""
    for d in "${candidates[@]}"; do
        [ -e "$d/$lib" ] && { found="$d/$lib"; break; }
    done
    if [ -z "$found" ]; then
        found="$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')"
    fi
    if [ -n "$found" ]; then
        echo "  $lib: $found"
        d="$(dirname "$found")"
        [[ " ${lib_dirs[*]-} " == *" $d "* ]] || lib_dirs+=("$d")
    else
        echo "  $lib: NOT FOUND"
        missing_libs+=("$lib")
    fi
done
cuda=1
if [ -z "$gpu_name" ]; then
    cuda=0
    echo "CUDA: absent (no GPU): CPU-only check, no CUDA parity and no GPU throughput"
elif [ ${#missing_libs[@]} -gt 0 ]; then
    cuda=0
    echo "CUDA: unusable: ${missing_libs[*]} not found in the loader's cache, /usr/local/cuda*/ or Python's nvidia-* wheels; install the CUDA 13 runtime (cudart, cuBLAS, cuRAND) and cuDNN 9 and put their folders on LD_LIBRARY_PATH"
fi
if [ ${#lib_dirs[@]} -gt 0 ]; then
    LD_LIBRARY_PATH="$(IFS=:; echo "${lib_dirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
fi

# --- 4. models and input --------------------------------------------------------------------------------------------
models="$work/models"
mkdir -p "$models"
labels_csv="$models/labels-164.csv"
{ echo "index,code"; for i in $(seq 0 163); do echo "$i,label_$i"; done; } >"$labels_csv"
fp16=0
if "$cli" model random --help 2>/dev/null | grep -q -- '--precision'; then
    fp16=1
else
    echo "fp16: this build's 'model random' has no --precision: no fp16 rows (build from a main that has the fp16 export)"
fi
io_binding=0
if "$cli" bench model --help 2>/dev/null | grep -q -- '--io-binding'; then
    io_binding=1
else
    echo "I/O binding: this build's 'bench model' has no --io-binding: CUDA graph rows are left out (ONNX Runtime replays a graph only with bound I/O)"
fi
run_binding=0
if "$cli" model run --help 2>/dev/null | grep -q -- '--io-binding'; then
    run_binding=1
else
    echo "I/O binding: this build's 'model run' has no --io-binding: no parity rows for the workers' bound path (device memory, CUDA graphs)"
fi
say "making random-weight models (seed 1234, 164 labels), in parallel"
made=()
for size in $sizes; do
    for precision in fp32 fp16; do
        [ "$precision" = fp16 ] && [ "$fp16" = 0 ] && continue
        [ -f "$models/$size-$precision.onnx" ] && continue
        extra=(); [ "$precision" = fp16 ] && extra=(--precision fp16)
        "$cli" model random --size "$size" --labels 164 --labels-csv "$labels_csv" --seed 1234 "${extra[@]}" \
            --out "$models/$size-$precision.onnx.tmp" >"$models/$size-$precision.log" 2>&1 &
        made+=("$size-$precision:$!")
    done
done
for entry in "${made[@]}"; do
    name="${entry%%:*}"
    if wait "${entry##*:}"; then
        mv "$models/$name.onnx.tmp" "$models/$name.onnx"
        echo "  $name: $(grep -m1 '^wrote' "$models/$name.log" | sed 's/\.tmp in / in /')"
    else
        fail "model random $name: $(tail -1 "$models/$name.log")"
        rm -f "$models/$name.onnx.tmp"
    fi
done
input="$work/input-16.npy"
python3 "$here/compare.py" input --batch 16 --seed 11 --out "$input" || { echo "error: cannot write the input windows" >&2; exit 2; }

# --- 5. parity ------------------------------------------------------------------------------------------------------
run_model() {  # run_model NAME MODEL PROVIDER [--set ...]: outputs to $work/outputs/NAME
    local name=$1 model=$2 provider=$3; shift 3
    rm -rf "$work/outputs/$name"
    if "$cli" model run --model "$model" --input "$input" --out "$work/outputs/$name" --provider "$provider" "$@" >"$work/outputs/$name.log" 2>&1; then
        return 0
    fi
    fail "model run $name: $(grep -m1 '^error' "$work/outputs/$name.log" || tail -1 "$work/outputs/$name.log")"
    return 1
}
parity() { python3 "$here/compare.py" parity --results "$results" "$@" || fails=$((fails + 1)); }
mkdir -p "$work/outputs"
for size in $sizes; do
    [ -f "$models/$size-fp32.onnx" ] || continue
    say "parity: $size"
    run_model "$size-cpu-fp32" "$models/$size-fp32.onnx" cpu || continue
    if [ "$cuda" = 1 ]; then
        run_model "$size-cuda-fp32" "$models/$size-fp32.onnx" cuda \
            && parity --ref "$work/outputs/$size-cpu-fp32" --test "$work/outputs/$size-cuda-fp32" --mode fp32 --label "$size CUDA fp32 (TF32 off) vs CPU fp32"
        run_model "$size-cuda-fp32-tf32" "$models/$size-fp32.onnx" cuda --set Workers:Cuda:UseTf32=true \
            && parity --ref "$work/outputs/$size-cpu-fp32" --test "$work/outputs/$size-cuda-fp32-tf32" --mode info --label "$size CUDA fp32 TF32 on vs CPU fp32"
        if [ "$run_binding" = 1 ]; then
            # The workers' path (the 16 windows are one fixed-shape batch of 16): device tensors bound once, copies
            # by ONNX Runtime; scored three times, and every time must give the first time's outputs bit for bit.
            run_model "$size-cuda-fp32-bound" "$models/$size-fp32.onnx" cuda --io-binding on --repeat 3 \
                && parity --ref "$work/outputs/$size-cpu-fp32" --test "$work/outputs/$size-cuda-fp32-bound" --mode fp32 --label "$size CUDA fp32 bound in device memory vs CPU fp32"
            # The same with a CUDA graph: captured on the first time, replayed on the second and third.
            run_model "$size-cuda-fp32-graph" "$models/$size-fp32.onnx" cuda --io-binding on --repeat 3 --set Workers:Cuda:EnableCudaGraph=true \
                && parity --ref "$work/outputs/$size-cpu-fp32" --test "$work/outputs/$size-cuda-fp32-graph" --mode fp32 --label "$size CUDA fp32 CUDA graph (device-bound) vs CPU fp32"
        fi
    fi
    if [ -f "$models/$size-fp16.onnx" ]; then
        fp16_provider=cpu; [ "$cuda" = 1 ] && fp16_provider=cuda
        run_model "$size-$fp16_provider-fp16" "$models/$size-fp16.onnx" "$fp16_provider" \
            && parity --ref "$work/outputs/$size-cpu-fp32" --test "$work/outputs/$size-$fp16_provider-fp16" --mode fp16 --label "$size ${fp16_provider^^} fp16 vs CPU fp32"
        if [ "$cuda" = 1 ] && [ "$run_binding" = 1 ]; then
            run_model "$size-cuda-fp16-graph" "$models/$size-fp16.onnx" cuda --io-binding on --repeat 3 --set Workers:Cuda:EnableCudaGraph=true \
                && parity --ref "$work/outputs/$size-cpu-fp32" --test "$work/outputs/$size-cuda-fp16-graph" --mode fp16 --label "$size CUDA fp16 CUDA graph (device-bound) vs CPU fp32"
        fi
    fi
done

# --- 6. throughput --------------------------------------------------------------------------------------------------
bench_row() {  # bench_row SIZE BATCH PRECISION TF32 GRAPH PROVIDER
    local size=$1 batch=$2 precision=$3 tf32=$4 graph=$5 provider=$6 note="" rate="" binding="" args=()
    local model="$models/$size-$precision.onnx"
    args=(bench model --model "$model" --provider "$provider" --batch "$batch" --seconds "$seconds")
    [ "$tf32" = true ] && args+=(--set Workers:Cuda:UseTf32=true)
    if [ "$graph" = true ]; then
        if [ "$io_binding" = 1 ]; then args+=(--io-binding on --set Workers:Cuda:EnableCudaGraph=true); else note="n/a: this build has no --io-binding, which CUDA graphs need"; fi
    elif [ "$io_binding" = 1 ] && [ "$provider" = cuda ]; then
        args+=(--io-binding on)
    fi
    if [ -z "$note" ] && [ "$SECONDS" -ge "$budget" ]; then note="skipped: out of the check's time budget ($budget s)"; fi
    if [ -z "$note" ]; then
        local logf="$work/bench-$size-$batch-$precision-$tf32-$graph.log"
        if "$cli" "${args[@]}" >"$logf" 2>&1; then
            rate="$(sed -n 's/^ecg_per_second=//p' "$logf" | tail -1)"
            binding="$(sed -n 's/^io binding: //p' "$logf" | head -1)"
            echo "  onnxruntime $size batch $batch $precision tf32 $tf32 graph $graph: $rate windows/s ($(grep -m1 '^runs:' "$logf"); io binding: ${binding:-not reported})"
        else
            note="$(grep -m1 '^error' "$logf" || tail -1 "$logf")"
            note="${note:0:200}"
            echo "  onnxruntime $size batch $batch $precision tf32 $tf32 graph $graph: $note"
        fi
    else
        echo "  onnxruntime $size batch $batch $precision tf32 $tf32 graph $graph: $note"
    fi
    python3 - "$results" "$size" "$batch" "$precision" "$tf32" "$graph" "$rate" "$note" "${binding:-}" <<'PY'
import json, sys
path, size, batch, precision, tf32, graph, rate, note, binding = sys.argv[1:]
row = {"kind": "bench", "engine": "onnxruntime", "size": size, "batch": int(batch), "precision": precision,
       "tf32": tf32 == "true", "graph": graph == "true"}
if binding:
    row["io_binding"] = binding
if rate:
    row["windows_per_s"] = float(rate)
else:
    row["note"] = note or "failed"
open(path, "a").write(json.dumps(row) + "\n")
PY
}
deadline=$(( $(date +%s) + budget - SECONDS ))
if [ "$cuda" = 1 ]; then
    for size in $sizes; do
        [ -f "$models/$size-fp32.onnx" ] || continue
        say "throughput: $size, ONNX Runtime CUDA"
        for batch in $batches; do
            for graph in false true; do
                bench_row "$size" "$batch" fp32 false "$graph" cuda
                bench_row "$size" "$batch" fp32 true "$graph" cuda
                [ -f "$models/$size-fp16.onnx" ] && bench_row "$size" "$batch" fp16 false "$graph" cuda
            done
        done
        say "throughput: $size, PyTorch"
        PYTHONUNBUFFERED=1 python3 "$here/torch_reference.py" --model "$models/$size-fp32.onnx" --size "$size" --input "$input" \
            --onnx-cpu "$work/outputs/$size-cpu-fp32" --batches "$(echo $batches | tr ' ' ,)" --seconds "$seconds" \
            --results "$results" --deadline "$deadline" || fails=$((fails + 1))
    done
else
    # No GPU: the CPU provider on a tiny batch, only to show the measuring path works; and the PyTorch module's check
    # against the ONNX model on the CPU where PyTorch is installed.
    first="${sizes%% *}"
    if [ -f "$models/$first-fp32.onnx" ]; then
        # What a worker asked for CUDA here would say: one line naming what is missing.
        "$cli" model run --model "$models/$first-fp32.onnx" --input "$input" --out "$work/outputs/cuda-refused" --provider cuda >"$work/cuda-refused.log" 2>&1
        echo "hubert-ecg asked for CUDA here says: $(grep -m1 '^error' "$work/cuda-refused.log" || tail -1 "$work/cuda-refused.log")"
    fi
    say "no CUDA: one CPU row (batch 2) to exercise the benchmark path"
    [ -f "$models/$first-fp32.onnx" ] && bench_row "$first" 2 fp32 false false cpu
    if python3 -c 'import torch' 2>/dev/null; then
        for size in $sizes; do
            [ -d "$work/outputs/$size-cpu-fp32" ] || continue
            python3 "$here/torch_reference.py" --model "$models/$size-fp32.onnx" --size "$size" --input "$input" \
                --onnx-cpu "$work/outputs/$size-cpu-fp32" --results "$results" --check-only || fails=$((fails + 1))
        done
    else
        echo "PyTorch: not importable here; no PyTorch check"
    fi
fi

# --- 7. the table ---------------------------------------------------------------------------------------------------
say "results (${gpu_name:-no GPU})"
python3 "$here/compare.py" table --results "$results"
[ "$cuda" = 1 ] || echo "CUDA was not usable here: the table holds no GPU numbers (see above for why)."
echo "device check: $fails failure(s) in $SECONDS s; log $log, results $results"
[ "$fails" = 0 ]
