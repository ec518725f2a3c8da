"""Neural-network building blocks: deep MLPs, residual and ConvNeXt blocks, norms, initialisation, graph layers."""
