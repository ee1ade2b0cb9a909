"""rustkm: write, build and test Linux kernel modules in Rust, in throwaway QEMU VMs."""

from rustkm.errors import RustkmError

__all__ = ["RustkmError", "boot"]


def __getattr__(name: str) -> object:
    # Imported lazily so that `import rustkm` stays cheap for the CLI and the pytest plugin.
    if name == "boot":
        from rustkm.api import boot

        return boot
    raise AttributeError(name)
