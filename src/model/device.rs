//! Device selection from its command-line spelling (`cpu`, `cuda:N`; weight precisions are
//! [`super::quant::WeightDtype`]), and the device-memory reading used by [`GenStats`](super::GenStats) on CUDA.

use anyhow::{bail, Result};
use candle_core::Device;

/// Parses `cpu`, `cuda` (= `cuda:0`) or `cuda:N` and opens the device.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("cpu") {
        return Ok(Device::Cpu);
    }
    let Some(rest) = spec.strip_prefix("cuda") else {
        bail!("unknown device '{spec}': expected `cpu` or `cuda:N` (e.g. `cuda:0`)");
    };
    let ordinal = match rest.strip_prefix(':') {
        None if rest.is_empty() => 0,
        Some(n) => n.parse::<usize>().map_err(|_| {
            anyhow::anyhow!("unknown device '{spec}': the GPU number after `cuda:` must be a number")
        })?,
        None => bail!("unknown device '{spec}': expected `cpu` or `cuda:N` (e.g. `cuda:0`)"),
    };
    open_cuda(ordinal, spec)
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize, spec: &str) -> Result<Device> {
    use anyhow::Context;
    Device::new_cuda(ordinal).with_context(|| format!("cannot open device '{spec}'"))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(_ordinal: usize, spec: &str) -> Result<Device> {
    bail!(
        "device '{spec}' needs CUDA support, and this build of prism has none. \
         Consider rebuilding with `cargo build --release --features cuda` (needs nvcc), or use `--device cpu`"
    )
}

/// The spelling [`parse_device`] accepts for `device`.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => match device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            _ => "cuda".into(),
        },
        Device::Metal(_) => "metal".into(),
    }
}

/// Memory in use on a CUDA device (total minus free, all processes), `None` on other devices.
#[cfg(feature = "cuda")]
pub fn device_memory_in_use(device: &Device) -> Option<u64> {
    let cuda = device.as_cuda_device().ok()?;
    // Binds this device's context first, so the numbers are this GPU's whatever thread asks.
    let (free, total) = cuda.cuda_stream().context().mem_get_info().ok()?;
    Some((total - free) as u64)
}

/// Memory in use on a CUDA device; always `None` in a build without CUDA.
#[cfg(not(feature = "cuda"))]
pub fn device_memory_in_use(_device: &Device) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses_in_any_case() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert!(parse_device(" CPU ").unwrap().is_cpu());
        assert_eq!(device_name(&Device::Cpu), "cpu");
    }

    #[test]
    fn unknown_devices_are_named() {
        for spec in ["gpu", "cuda:x", "cudax", "tpu:0"] {
            let err = parse_device(spec).unwrap_err().to_string();
            assert!(err.contains(spec), "{err}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_rebuild() {
        for spec in ["cuda", "cuda:0", "cuda:3"] {
            let err = parse_device(spec).unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
            assert!(err.contains(spec), "{err}");
        }
    }

    #[test]
    fn cpu_has_no_device_memory_reading() {
        assert_eq!(device_memory_in_use(&Device::Cpu), None);
    }
}
