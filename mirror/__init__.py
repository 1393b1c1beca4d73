"""airgap-mirror: carry container images, Helm charts and Palette packs across an air gap."""

__version__ = "0.1.0"
