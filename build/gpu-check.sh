#!/usr/bin/env bash
# GPU check for MLNet.DeepRec: run it on a Linux x64 machine with an NVIDIA GPU, from anywhere:
#
#   bash build/gpu-check.sh
#
# It prints what it verified, one line per check (VERIFIED / SKIPPED / FAILED), and exits non-zero when a check FAILED.
# On a machine without a GPU it still runs: it shows the CPU fallback of GPU scoring (that is all it can verify there).
#
# What it does (everything is built under artifacts/gpu-check, nothing in the source tree changes):
#   1. reports the GPU, the driver and the CUDA libraries that the two native runtimes need:
#      ONNX Runtime 1.31 (Microsoft.ML.OnnxRuntime.Gpu 1.31.0) needs CUDA 13 (libcudart.so.13, libcublasLt.so.13) and
#      cuDNN 9 (libcudnn.so.9); libtorch 2.10's CUDA build is CUDA 12.8 (it ships its own CUDA libraries).
#   2. trains and saves a model on the CPU (examples/MovieRecommendation --quick);
#   3. GPU scoring: builds examples/ServeSavedModel with -p:DeepRecOnnxRuntimeGpu=true, scores the saved model with
#      --gpu 0 and without, and checks that the scores agree and whether ONNX Runtime's CUDA provider was loaded;
#   4. CUDA training: builds test/MLNet.DeepRec.Probes against a CUDA build of libtorch
#      (DEEPREC_LIBTORCH_CUDA_PACKAGE, default libtorch-cuda-12.8-linux-x64, version DEEPREC_LIBTORCH_CUDA_VERSION,
#      default 2.10.0) and trains MF and NeuMF on CUDA device 0. The package source this project was developed with does
#      not serve TorchSharp's CUDA packages; where restore fails, the check says so and is SKIPPED.
set -uo pipefail
cd "$(dirname "$0")/.."
ART=artifacts/gpu-check
mkdir -p "$ART"
failed=0
say() { printf '%-9s %s\n' "$1" "$2"; if [ "$1" = FAILED ]; then failed=1; fi; }
# A library is found when the dynamic loader knows it (ldconfig) or it is in a folder of LD_LIBRARY_PATH.
has_lib() {
  ldconfig -p 2>/dev/null | grep -q "$1" && return 0
  local d
  for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/$1" ] && return 0; done
  return 1
}

echo "== 1. Machine"
gpu_present=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu_present=1
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/   GPU: /'
  nvidia-smi | grep -o 'CUDA Version: [0-9.]*' | sed 's/^/   driver supports /'
  say VERIFIED "an NVIDIA GPU is visible (nvidia-smi)"
else
  say SKIPPED "no NVIDIA GPU visible (nvidia-smi missing or failing): only the CPU fallback can be shown"
fi
cuda13=1
for lib in libcudart.so.13 libcublasLt.so.13 libcudnn.so.9; do
  if has_lib "$lib"; then echo "   found $lib"; else echo "   missing $lib"; cuda13=0; fi
done
[ $cuda13 = 1 ] && say VERIFIED "CUDA 13 and cuDNN 9 libraries found (ONNX Runtime 1.31 GPU needs them)" \
                || say SKIPPED "CUDA 13 / cuDNN 9 libraries not all found: ONNX Runtime will fall back to the CPU"

echo "== 2. Train and save a model on the CPU"
if dotnet run --project examples/MovieRecommendation -c Release -- --quick > "$ART/train.log" 2>&1; then
  MODEL=examples/MovieRecommendation/bin/Release/net10.0/MovieRecommendation.zip
  say VERIFIED "trained and saved $MODEL"
else
  tail -20 "$ART/train.log"; say FAILED "examples/MovieRecommendation (see $ART/train.log)"; exit 1
fi

echo "== 3. Scoring with Microsoft.ML.OnnxRuntime.Gpu 1.31.0"
if dotnet build examples/ServeSavedModel -c Release --artifacts-path "$ART/serve" -p:DeepRecOnnxRuntimeGpu=true > "$ART/serve-build.log" 2>&1; then
  SERVE="$ART/serve/bin/ServeSavedModel/release/ServeSavedModel.dll"
  dotnet "$SERVE" "$MODEL" u0:i1 u1:i2 u2:i3 > "$ART/serve-cpu.out" 2> "$ART/serve-cpu.err"
  dotnet "$SERVE" "$MODEL" u0:i1 u1:i2 u2:i3 --gpu 0 > "$ART/serve-gpu.out" 2> "$ART/serve-gpu.err"
  grep PREDICTION "$ART/serve-gpu.out" | sed 's/^/   /'
  if grep -q "libonnxruntime_providers_cuda.so" "$ART/serve-gpu.out" && ! grep -q "scoring on the CPU" "$ART/serve-gpu.err"; then
    say VERIFIED "GPU scoring: ONNX Runtime loaded its CUDA provider for --gpu 0"
  elif [ $gpu_present = 1 ] && [ $cuda13 = 1 ]; then
    sed 's/^/   /' "$ART/serve-gpu.err" | head -5; say FAILED "GPU scoring: a GPU and CUDA 13 are present but ONNX Runtime did not use CUDA"
  else
    grep -h "scoring on the CPU" "$ART/serve-gpu.err" | sed 's/^/   /' | head -2
    say VERIFIED "GPU scoring not possible here; the CPU fallback warning is given and scoring goes on"
  fi
  # Scores on the GPU may differ from the CPU's in the last digits; compare to 1e-4.
  if paste <(grep PREDICTION "$ART/serve-cpu.out" | cut -f4) <(grep PREDICTION "$ART/serve-gpu.out" | cut -f4) \
     | awk 'NF!=2 || ($1-$2)^2 > 1e-8 { bad=1 } END { exit bad }' && [ -s "$ART/serve-gpu.out" ]; then
    say VERIFIED "scores with --gpu 0 equal the CPU scores (to 1e-4)"
  else
    say FAILED "scores with --gpu 0 differ from the CPU scores (see $ART/serve-*.out)"
  fi
else
  tail -20 "$ART/serve-build.log"; say FAILED "building ServeSavedModel with Microsoft.ML.OnnxRuntime.Gpu 1.31.0 (see $ART/serve-build.log)"
fi

echo "== 4. Training on CUDA (TorchSharp with libtorch's CUDA build)"
PKG="${DEEPREC_LIBTORCH_CUDA_PACKAGE:-libtorch-cuda-12.8-linux-x64}"
VER="${DEEPREC_LIBTORCH_CUDA_VERSION:-2.10.0}"
if dotnet build test/MLNet.DeepRec.Probes -c Release --artifacts-path "$ART/probes" \
     -p:DeepRecLibTorchPackage="$PKG" -p:DeepRecLibTorchVersion="$VER" > "$ART/probes-build.log" 2>&1; then
  dotnet "$ART/probes/bin/MLNet.DeepRec.Probes/release/MLNet.DeepRec.Probes.dll" train-gpu > "$ART/train-gpu.out" 2>&1
  rc=$?
  sed 's/^/   /' "$ART/train-gpu.out" | tail -12
  case $rc in
    0) say VERIFIED "CUDA training: MF and NeuMF trained on CUDA device 0 and scored through ONNX" ;;
    3) if [ $gpu_present = 1 ]; then say FAILED "CUDA training: $PKG loaded but torch.cuda.is_available() is false"; else say SKIPPED "CUDA training: no GPU"; fi ;;
    *) say FAILED "CUDA training (see $ART/train-gpu.out)" ;;
  esac
else
  grep -m1 -E "NU1101|NU1102|error" "$ART/probes-build.log" | sed 's/^/   /'
  say SKIPPED "CUDA training: $PKG $VER could not be restored (not served by this package source?)"
fi

exit $failed
