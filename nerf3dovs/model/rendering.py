"""Ray geometry and volume-rendering helpers (NDC map, uniform samples, alpha compositing)."""

from __future__ import annotations

import torch


def ndc_rays(
    origins: torch.Tensor, directions: torch.Tensor, fx: float, fy: float, width: float, height: float, near: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map world rays of a forward-facing capture to normalised device coordinates.

    The reference camera looks along -z of the normalised world (the LLFF/3D-OVS convention after
    recentring). A world point (x, y, z), z < 0, maps to ``(-2fx/W * x/z, -2fy/H * y/z, 1 + 2 near/z)``:
    the view frustum of the reference camera becomes [-1, 1]^2 in x, y and the depth range
    [near, inf) becomes z in [-1, 1]. Rays are first moved onto the plane z = -near; in NDC the ray
    parameter t in [0, 1] then spans near to infinity.

    Args:
        origins: (N, 3) world ray origins.
        directions: (N, 3) world directions (any length; the NDC ray does not depend on it).
        fx, fy, width, height: intrinsics of the reference camera (any resolution: only fx/W, fy/H matter).
        near: depth of the NDC near plane.

    Returns:
        ``(origins_ndc, directions_ndc)``, each (N, 3).
    """
    dz = directions[:, 2]
    # rays parallel to the image plane never reach z = -near; nudge them so the map stays finite
    dz = torch.where(dz.abs() < 1e-9, torch.full_like(dz, -1e-9), dz)
    t = -(near + origins[:, 2]) / dz
    o = origins + t[:, None] * directions
    ax, ay = -2.0 * fx / width, -2.0 * fy / height
    ox, oy, oz = o[:, 0], o[:, 1], o[:, 2]
    dx, dy = directions[:, 0], directions[:, 1]
    o_ndc = torch.stack([ax * ox / oz, ay * oy / oz, 1.0 + 2.0 * near / oz], dim=-1)
    d_ndc = torch.stack(
        [ax * (dx / dz - ox / oz), ay * (dy / dz - oy / oz), -2.0 * near / oz], dim=-1
    )
    return o_ndc, d_ndc


def ndc_to_world(points: torch.Tensor, fx: float, fy: float, width: float, height: float, near: float = 1.0) -> torch.Tensor:
    """Inverse of the NDC point map: (N, 3) NDC points with z < 1 -> (N, 3) world points."""
    z = 2.0 * near / (points[:, 2] - 1.0)
    x = -points[:, 0] * z * width / (2.0 * fx)
    y = -points[:, 1] * z * height / (2.0 * fy)
    return torch.stack([x, y, z], dim=-1)


def aabb_ray_bounds(origins: torch.Tensor, directions: torch.Tensor, aabb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances of rays through a box (slab test); exit <= entry means a miss.

    Args:
        origins, directions: (N, 3).
        aabb: (2, 3).

    Returns:
        ``(t_near (N,), t_far (N,))`` with t_near >= 0.
    """
    safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    t0 = (aabb[0] - origins) / safe
    t1 = (aabb[1] - origins) / safe
    t_near = torch.minimum(t0, t1).amax(-1).clamp(min=0.0)
    t_far = torch.maximum(t0, t1).amin(-1)
    return t_near, t_far


def uniform_samples(t_near: torch.Tensor, t_far: torch.Tensor, num_samples: int, jitter: torch.Tensor | None) -> torch.Tensor:
    """``num_samples`` evenly spaced t values per ray, shifted by one jitter per ray (stratified).

    Args:
        t_near, t_far: (N,) interval per ray.
        num_samples: S.
        jitter: (N,) or (N, 1) in [0, 1): the shift as a fraction of the step; None = 0 (evaluation).

    Returns:
        (N, S) sample positions.
    """
    steps = torch.arange(num_samples, device=t_near.device, dtype=t_near.dtype) / num_samples
    span = (t_far - t_near)[:, None]
    t = t_near[:, None] + span * steps[None]
    if jitter is not None:
        t = t + span / num_samples * jitter.reshape(-1, 1).to(t)
    return t


def composite_weights(sigma: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Alpha-compositing weights ``w_i = T_i (1 - exp(-sigma_i delta_i))``, ``T_i = prod_{j<i} (1 - alpha_j)``.

    Args:
        sigma: (N, S) densities (already multiplied by any distance scale).
        deltas: (N, S) segment lengths.

    Returns:
        (N, S) weights.
    """
    alpha = 1.0 - torch.exp(-sigma * deltas)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], dim=-1), dim=-1)[:, :-1]
    return alpha * trans
