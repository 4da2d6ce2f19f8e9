"""Starting candidate for the circle-packing example: 26 circles in the unit square.

The evolution engine rewrites only the code between the EVOLVE-BLOCK markers; the
`run_packing()` entry point below the block is what the evaluator calls.
"""

import numpy as np


# EVOLVE-BLOCK-START
def construct_packing():
    """Place 26 circles in the unit square and give each one a non-overlapping radius.

    Layout: five horizontal rows holding 5, 6, 5, 5 and 5 circles, each row's circles
    evenly spaced across the square. Radii are then computed so that every circle stays
    inside the square and never overlaps another one.

    Returns:
        centers: (26, 2) array of (x, y) circle centres.
        radii: (26,) array of radii.
    """
    row_counts = [5, 6, 5, 5, 5]
    num_rows = len(row_counts)
    centers = []
    for row, count in enumerate(row_counts):
        y = (row + 0.5) / num_rows
        for i in range(count):
            x = (i + 0.5) / count
            centers.append([x, y])
    centers = np.array(centers, dtype=float)
    radii = compute_max_radii(centers)
    return centers, radii


def compute_max_radii(centers, sweeps=50, margin=1e-9):
    """Largest radii (greedily) such that circles stay in the square and do not overlap.

    Starts from a safe guess (half the distance to the nearest neighbour, capped by the
    distance to the nearest wall) and then lets each circle grow in turn until it touches
    a wall or a neighbour. Every step keeps the packing valid; a small safety margin is
    subtracted at the end to absorb rounding.
    """
    n = centers.shape[0]
    x, y = centers[:, 0], centers[:, 1]
    wall = np.minimum(np.minimum(x, y), np.minimum(1.0 - x, 1.0 - y))
    diff = centers[:, None, :] - centers[None, :, :]
    dist = np.sqrt((diff ** 2).sum(axis=-1))
    np.fill_diagonal(dist, np.inf)

    radii = np.minimum(wall, dist.min(axis=1) / 2.0)
    for _ in range(sweeps):
        for i in range(n):
            radii[i] = max(0.0, min(wall[i], np.min(dist[i] - radii)))
    return np.maximum(radii - margin, 0.0)


# EVOLVE-BLOCK-END


def run_packing():
    """Entry point used by the evaluator: (centers (26, 2), radii (26,), sum of radii)."""
    centers, radii = construct_packing()
    sum_radii = float(np.sum(radii))
    return centers, radii, sum_radii


if __name__ == "__main__":
    _, _, total = run_packing()
    print(f"sum of radii: {total:.6f}")
