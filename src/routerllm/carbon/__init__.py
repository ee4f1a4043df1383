"""Carbon, energy and cost: meters (CodeCarbon, per-token estimates), the request log, reports."""

from routerllm.carbon.meter import COMPONENTS, CarbonMeter, Measurement, create_meter

__all__ = ["COMPONENTS", "CarbonMeter", "Measurement", "create_meter"]
