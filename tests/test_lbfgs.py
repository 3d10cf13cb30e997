"""The compact L-BFGS of chapter 04 against the textbook two-loop recursion."""
import torch

from recon_lib.lbfgs import CompactLBFGS, inverse_hessian_product


def two_loop(g, s, y):
    """Nocedal & Wright, Algorithm 7.4, pairs oldest first: the reference for H g."""
    q, alphas = g.clone(), []
    for si, yi in zip(reversed(s), reversed(y)):
        alpha = (si @ q) / (yi @ si)
        q -= alpha * yi
        alphas.append(alpha)
    r = q * (s[-1] @ y[-1]) / (y[-1] @ y[-1])
    for (si, yi), alpha in zip(zip(s, y), reversed(alphas)):
        r += si * (alpha - (yi @ r) / (yi @ si))
    return r


def test_compact_form_equals_two_loop_recursion():
    torch.manual_seed(0)
    a = torch.randn(12, 12, dtype=torch.float64)
    hessian = a @ a.T + torch.eye(12, dtype=torch.float64)
    s = torch.randn(5, 12, dtype=torch.float64)
    y = s @ hessian  # curvature pairs of a convex quadratic
    g = torch.randn(12, dtype=torch.float64)
    torch.testing.assert_close(inverse_hessian_product(g, s, y), two_loop(g, s, y))


def test_compact_lbfgs_minimises_a_quadratic_with_a_full_ring_buffer():
    torch.manual_seed(0)
    a = torch.randn(20, 20, dtype=torch.float64)
    hessian, b = a @ a.T / 20 + torch.eye(20, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    x = torch.zeros(20, dtype=torch.float64, requires_grad=True)
    optimizer = CompactLBFGS([x], max_iter=5, history_size=3)  # the ring wraps many times

    def closure():
        with torch.enable_grad():
            loss = 0.5 * x @ hessian @ x - b @ x
            x.grad, = torch.autograd.grad(loss, [x])
        return loss.detach()

    for _ in range(40):
        optimizer.step(closure)
    torch.testing.assert_close(x.detach(), torch.linalg.solve(hessian, b), atol=1e-6, rtol=0)
    assert optimizer.state[x]["count"] == 3


def test_cached_small_products_equal_the_buffers_products():
    torch.manual_seed(1)
    a = torch.randn(15, 15, dtype=torch.float64)
    hessian = a @ a.T / 15 + torch.eye(15, dtype=torch.float64)
    x = torch.randn(15, dtype=torch.float64, requires_grad=True)
    optimizer = CompactLBFGS([x], max_iter=3, history_size=4)

    def closure():
        with torch.enable_grad():
            loss = 0.25 * (x @ hessian @ x) ** 2 / 15 + x.sum()
            x.grad, = torch.autograd.grad(loss, [x])
        return loss.detach()

    for _ in range(5):
        optimizer.step(closure)
    state = optimizer.state[x]
    order = optimizer._order(state)
    s, y = state["S"][order], state["Y"][order]
    torch.testing.assert_close(state["SY"], s @ y.T)
    torch.testing.assert_close(state["YY"], y @ y.T)
