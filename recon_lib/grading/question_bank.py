"""Check-your-understanding questions, 3–5 per chapter, as plain data (see :mod:`.questions`).

One :class:`Question` per entry: its id ``"NN.qK"`` (NN = the chapter), the prompt, the kind
(``"choice"``: options, the right one by letter; ``"number"``: a value and a tolerance), a hint
for a wrong answer that does not give the answer away, and the explanation shown once the
learner got it right (or asked with ``reveal=True``). Every numeric answer is recomputed with
the library in ``tests/test_questions.py``, so a change in a chapter that moves an answer fails
a test instead of leaving a wrong key here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    """One question: ``answer`` is an option letter (``"b"``) or a number."""

    id: str
    prompt: str
    kind: str  # "choice" | "number"
    answer: str | float
    hint: str
    explanation: str
    options: tuple[str, ...] = ()
    tolerance: float = 1e-6  # absolute, for numbers
    rel_tolerance: float = 0.0  # relative, for numbers spanning many decades (1e-38)


def _choice(qid: str, prompt: str, options: tuple[str, ...], answer: str, hint: str,
            explanation: str) -> Question:
    return Question(qid, prompt, "choice", answer, hint, explanation, options)


def _number(qid: str, prompt: str, answer: float, hint: str, explanation: str,
            tolerance: float = 1e-6, rel_tolerance: float = 0.0) -> Question:
    return Question(qid, prompt, "number", answer, hint, explanation, (), tolerance, rel_tolerance)


QUESTIONS: tuple[Question, ...] = (
    # --- 00 Federated learning and the threat model ------------------------------------------
    _number("00.q1", "Section 1's victim is an MLP 625 → h → h → 10 with biases. Predict for the full "
            "profile's width h = 64: how many numbers does one FedSGD message hold?", 44874,
            "The message has one entry per model parameter: for each Linear layer, "
            "in·out weights plus out biases. Add the three layers.",
            "625·64 + 64 + 64·64 + 64 + 64·10 + 10 = 44 874 numbers, one per parameter "
            "(`sum(p.numel() for p in model.parameters())`), about 72× the 625 pixels of the image."),
    _choice("00.q2", "Which of these does an honest-but-curious server NOT know?",
            ("the model's weights θ", "the batch size B", "the private inputs xᵢ", "the loss ℓ"), "c",
            "The server designed the model, sent the weights and sets the protocol. What does "
            "every attack of the course try to rebuild?",
            "The private inputs are what the attacks rebuild; weights, architecture, B and the "
            "loss are all the server's own (section 2's table)."),
    _choice("00.q3", "A client holds B = 4 images and sends one message. That message equals",
            ("the gradient of its first image", "the sum of the four one-image messages",
             "the mean of the four one-image messages", "the largest of the four one-image messages"), "c",
            "The client differentiates the loss averaged over its batch; differentiation is linear.",
            "The gradient of the batch-averaged loss is the mean of the one-image gradients "
            "(section 3 checks it to 1e-6), so the server never sees one example's gradient when B > 1."),
    _number("00.q4", "One image, a biased first layer: predict |cos(row i of ∂ℓ/∂W, x)| for a unit with "
            "δᵢ ≠ 0.", 1.0,
            "Write row i of ∂ℓ/∂W with the chain rule: z = Wx + b, so ∂ℓ/∂Wᵢ,: = δᵢ · (what?). "
            "How does scaling a vector change the angle?",
            "∂ℓ/∂Wᵢ,: = δᵢ xᵀ is the image times one number, so |cos| = 1 (printed as 1.0000 in "
            "section 4); the sign of δᵢ only flips the colours.", tolerance=1e-3),
    # --- 01 One hidden node ---------------------------------------------------------------
    _choice("01.q1", "A single input, a biased first fully connected layer. Which formula rebuilds x "
            "from unit i?",
            ("(∂ℓ/∂bᵢ) ÷ (∂ℓ/∂Wᵢ)", "(∂ℓ/∂Wᵢ) ÷ (∂ℓ/∂bᵢ)", "(∂ℓ/∂Wᵢ) · (∂ℓ/∂bᵢ)", "(∂ℓ/∂Wᵢ) − (∂ℓ/∂bᵢ)"),
            "b", "Both gradients share the factor δᵢ = ∂ℓ/∂zᵢ; which operation makes it cancel and "
            "leaves a vector of d pixels?",
            "∂ℓ/∂Wᵢ = δᵢ x and ∂ℓ/∂bᵢ = δᵢ, so their ratio is x exactly, whatever network and loss "
            "follow (Claim 1, section 1)."),
    _number("01.q2", "Before running `rl.symbolic.chain(6)`, predict: a chain of depth n = 6 (one unit per "
            "layer). δ = ∂ℓ/∂b is a product of how many factors?", 13,
            "Count per layer: a weight and a slope σ′; then add the loss's own derivative once.",
            "2n + 1 = 13 factors: a weight vₖ and a slope σ′(zₖ) per layer, and L′(o) — the same "
            "factors appear in ∂ℓ/∂w, so they cancel at every depth."),
    _choice("01.q3", "The first layer has no bias. From one image's message the server gets",
            ("nothing about x", "x exactly, by the same ratio", "the direction of x, not its scale",
             "only the label"), "c",
            "∂ℓ/∂W = δ xᵀ is still there; what is missing to divide by?",
            "Without ∂ℓ/∂b = δ there is nothing to divide by: ∂ℓ/∂W = δxᵀ gives x up to scale "
            "(`direction_without_bias`); one known non-zero pixel or ‖x‖ fixes the scale (`fix_scale`)."),
    _number("01.q4", "A ReLU unit's pre-activation is negative. What is its δᵢ = ∂ℓ/∂zᵢ?", 0.0,
            "What is the slope of ReLU left of zero?",
            "δᵢ = 0: a dead unit passes no gradient, its ratio is 0/0, and `rl.analytic` skips it "
            "(and refuses when every unit is dead)."),
    _number("01.q5", "The ratio stays exact while δᵢ xⱼ is a normal float. Predict the smallest normal "
            "float32 (`torch.finfo(torch.float32).tiny`), to two significant digits.", 1.1754943508222875e-38,
            "float32 has an 8-bit exponent with bias 127; the smallest normal number is 2 to "
            "the power (1 − bias).",
            "2⁻¹²⁶ ≈ 1.2e-38. Below it numbers are subnormal (grid spacing 2⁻¹⁴⁹) and the pixel "
            "error grows like 2⁻¹⁴⁹/|δ| (section 5c).", tolerance=0.0, rel_tolerance=0.05),
    # --- 02 Batches -----------------------------------------------------------------------
    _number("02.q1", "Predict, then check with torch.linalg.matrix_rank: what is rank ∇W for h = 8 units "
            "and a batch of B = 12 MNIST digits (d = 784)?", 8,
            "∇W = (1/B) Δ Xᵀ is an h×B matrix times a B×d matrix; the rank of a product is at most "
            "the smallest of its dimensions.",
            "rank ∇W = min(h, B, d) = min(8, 12, 784) = 8 for generic Δ and X (section 2)."),
    _number("02.q2", "With h = 16 units and B = 8 digits, what is the dimension of the span leaked by "
            "`rl.analytic.batch_span`?", 8,
            "The rows of ∇W are combinations of the images: how many images are there, and "
            "is h large enough for rank Δ to reach it?",
            "rank ∇W = min(16, 8, 784) = 8: with h ≥ B the leaked row space is exactly the span of "
            "the 8 images (section 2's table: span dim 8 for h = 9 and 16)."),
    _choice("02.q3", "h = 2 units, B = 4 images. What does the course show?",
            ("the batch is still the only one with this message",
             "other batches send exactly the same message",
             "the message holds nothing about the batch",
             "the labels can no longer be read"), "b",
            "Δ is 2×4: does it have a null space, and what does adding a null-space move do to ΔXᵀ?",
            "For h < B, Δ has a (B − h)-dimensional null space: X′ᵀ = Xᵀ + NM gives the identical "
            "message (section 3); the span still leaks, but not which batch."),
    _number("02.q4", "Writing the batch as X = C Vᵀ in the leaked span (r = B), how many unknown "
            "coefficients does the server fit for B = 12?", 144,
            "C has one row per image and one column per basis vector of the span.",
            "C is B × r = 12 × 12 = 144 numbers instead of B·d = 9408 pixels (section 4)."),
    _choice("02.q5", "Which condition does the course measure for recovering a batch of B images?",
            ("h > B only (strictly more units than images)", "h ≥ B (equality included)",
             "h ≥ B², one unit per pair", "h ≥ d, one unit per pixel"), "b",
            "Look at the phase transition's boundary column, h = B.",
            "h ≥ B: at h = B rank Δ = B still holds and the exact solver recovered 100% at every "
            "boundary cell; the abstract's 'exceeds' would exclude h = B."),
    # --- 03 Convolutions ------------------------------------------------------------------
    _number("03.q1", "Predict the output width d′ of a conv with d = 64, kernel k = 3, stride s = 2, "
            "padding p = 1.", 32,
            "d′ = ⌊(d + 2p − k)/s⌋ + 1 (section 2).",
            "⌊(64 + 2 − 3)/2⌋ + 1 = 31 + 1 = 32 (`rl.geometry.conv_output_width`)."),
    _number("03.q2", "Same layer (3×64×64 input, k = 3, s = 2, p = 1): how many kernels does the paper's "
            "bound h ≥ (d/d′)² C ask for at least?", 12,
            "Compute d′ first; each stride of 2 quarters the outputs per kernel.",
            "(64/32)² · 3 = 12 kernels (`rl.geometry.min_kernels(64, 3, 3, 2, 1)`)."),
    _number("03.q3", "A stride-1 'same' conv on a 5-channel input: the smallest number of kernels the "
            "bound allows?", 5,
            "A 'same' conv keeps d′ = d, so (d/d′)² = 1.",
            "h ≥ C = 5: with d′ = d each kernel gives as many equations as one input channel has pixels."),
    _choice("03.q4", "Exactly at the bound, a random 'same' conv is",
            ("not invertible", "invertible but badly conditioned; one extra kernel fixes it",
             "perfectly conditioned", "invertible only with ReLU"), "b",
            "Section 7 compares the condition number κ at h = C and h = C + 1.",
            "Square but badly conditioned (κ in the thousands at 224×224); one more kernel cuts κ "
            "several-fold and CGLS converges — the bound is where inversion becomes possible, "
            "not practical."),
    _choice("03.q5", "A layer meets the count h·d′² ≥ C·d². Is its input then always recoverable?",
            ("yes, the count guarantees full rank", "no: stride > kernel, dropped border pixels and "
             "edge deficits can leave the rank short", "only if it has no bias", "only for 1-D convs"),
            "b", "Section 4 plots the true rank against the bound for hundreds of layers.",
            "The count is necessary, not sufficient: pixels never read (stride > kernel, the floor "
            "in d′) or local edge deficits make A rank-deficient although it has enough rows."),
    # --- 04 Optimisation attacks ----------------------------------------------------------
    _choice("04.q1", "Gradient matching searches for",
            ("model weights that reproduce the message", "dummy inputs whose gradient matches the message",
             "the learning rate of the client", "the singular vectors of ∇W"), "b",
            "What does the server know, and what does it not?",
            "The model and the message are known; the server minimises D(∇θℓ(f(x̂), ŷ), g*) over "
            "dummy inputs x̂ (and in DLG a soft label ŷ)."),
    _number("04.q2", "Predict the cosine distance 1 − ⟨g, g*⟩/(‖g‖‖g*‖) between a gradient g* and "
            "g = 2·g* (same direction, twice as long).", 0.0,
            "The cosine distance only looks at the angle between the two gradients.",
            "0: the cosine distance is blind to scale (`rl.optimize.cosine_distance`), which is why "
            "it still works when the client clips its gradient (chapter 07)."),
    _choice("04.q3", "In the course's stored 20-seed run, what made gradient matching fast and reliable?",
            ("the uniform initialisation", "the label read from the gradient (iDLG)",
             "the orthogonality regulariser", "total variation"), "b",
            "Compare the configurations that share the label rule with those that share the init.",
            "Every configuration with the iDLG label succeeded on every seed in fewer steps; uniform "
            "init with DLG's label was the one that failed on some seeds."),
    _choice("04.q4", "The orthogonality regulariser between dummy images of a batch, in the stored runs "
            "(B = 2, 4, 8):",
            ("raised the success rate", "cut the median steps by half",
             "changed neither success nor steps", "made every run fail"), "c",
            "Section 5 reads `benchmarks/results/optimisation.json`.",
            "Not reproduced: it changed neither success nor steps in the course's setting "
            "(5 seeds; a small effect is not ruled out)."),
    # --- 05 Medical images ----------------------------------------------------------------
    _number("05.q1", "A hospital's MLP has 16 units on a 96×128 fMRI slice. How many numbers are in the "
            "first layer's weight gradient `1.weight`?", 196608,
            "One weight per (unit, pixel) pair.",
            "16 × 96 × 128 = 196 608 numbers, and every row is the slice times one number (δᵢ x)."),
    _number("05.q2", "A 1×48×64 slice, one 4×4 conv with stride 2 and padding 1. The smallest kernel "
            "count the bound h ≥ (d/d′)² C allows?", 4,
            "Stride 2 halves each side: d′ = d/2.",
            "(d/d′)² · C = 2² · 1 = 4 kernels; the chapter's sweep recovers the slice exactly from one "
            "kernel above it."),
    _choice("05.q3", "The first layer has no bias, so the closed form is refused. What happened to the scan?",
            ("it was safe: nothing leaked", "gradient matching rebuilt it exactly",
             "only its label leaked", "only a blur came back"), "b",
            "The direction of x is still in ∂ℓ/∂W; what fixes its scale?",
            "The `\"stabilised\"` search matched the message to round-off and rebuilt the slice exactly: "
            "removing the bias is no protection."),
    _choice("05.q4", "B slices in one message with h < B units. The reconstructions",
            ("hide the patient's anatomy", "are combinations of the patient's own slices",
             "are random noise", "are other patients' slices"), "b",
            "Where does every reconstruction lie (chapter 02's leaked span)?",
            "They lie in the span of the patient's own slices (distance at round-off), so the anatomy "
            "leaks; h < B hides only which combination is which slice."),
    # --- 06 Benchmarks --------------------------------------------------------------------
    _number("06.q1", "Pixels in [0, 1]: a reconstruction with MSE = 0.01 has what PSNR in dB?", 20.0,
            "PSNR = 10 log₁₀(1/MSE).",
            "10 · log₁₀(1/0.01) = 20 dB (`rl.metrics.psnr`)."),
    _choice("06.q2", "All distorted to 20 dB, which kept the highest SSIM in section 5?",
            ("a contrast change", "Gaussian noise", "blur"), "a",
            "SSIM compares local structure; which distortion leaves edges where they were?",
            "The contrast change kept SSIM 0.79, noise 0.55, blur 0.41 (stored run): the same PSNR can look "
            "very different, so PSNR < 20 dB is not automatically unrecognisable."),
    _choice("06.q3", "Where a closed form applies (closed_form, cnn_exact), how did the data kind matter?",
            ("colour kinds failed", "not at all: every kind came back above 60 dB",
             "only faces came back", "only grey kinds came back"), "b",
            "The closed forms are exact algebra: does the image content enter them?",
            "Every kind came back to round-off (> 60 dB) in milliseconds; only the searches depend on "
            "the data kind."),
    _choice("06.q4", "Which measured property explained the optimisation attack's ranking best here?",
            ("smoothness (TV)", "contrast", "the number of unknowns C·H·W"), "c",
            "Smoothness and contrast were confounded with something else; which kinds came back worst?",
            "The number of unknowns: the colour kinds (3·32·32) came back worst, the small grey faces "
            "best; TV and contrast correlated only through that confounder."),
    # --- 07 Defences ----------------------------------------------------------------------
    _choice("07.q1", "Does clipping a single image's gradient (without noise) stop the closed form?",
            ("yes, the gradient is smaller", "no: the constant factor cancels in the ratio",
             "only for ReLU networks", "only with secure aggregation"), "b",
            "Clipping multiplies the whole message by one number c; what is (c·δx)/(c·δ)?",
            "No: (c·δx)/(c·δ) = x. Clipping only confuses a Euclidean gradient-matching attacker; "
            "the cosine distance ignores scale."),
    _number("07.q2", "Secure aggregation over N = 4 clients with B = 2 images each. The aggregate is "
            "the message of one client with how many images?", 8,
            "Write the mean of N means of B one-image gradients as one mean.",
            "N·B = 8: so the span attack needs h ≥ 8, and the leaked span has rank min(h, 8)."),
    _number("07.q3", "Pruning keeps a fraction 1 − p of ∇W's entries. For one image (B = 1) and h = 8, "
            "the largest p that still leaves B·d equations, counting all pixels?", 0.875,
            "(1 − p)·h·d surviving equations for B·d unknowns; solve for p.",
            "p* = 1 − B/h = 0.875 (`rl.defences.pruning_threshold`); counting only the digit's "
            "non-zero pixels raises it (section 3).", tolerance=1e-4),
    _choice("07.q4", "A client runs E = 10 local SGD steps (FedAvg) on one image. The closed form",
            ("fails: the ratio mixes ten images", "still returns x: Σₜ δₜx / Σₜ δₜ = x",
             "returns x scaled by E", "needs E units"), "b",
            "Each step adds δᵢ⁽ᵗ⁾x to ∂Wᵢ and δᵢ⁽ᵗ⁾ to ∂bᵢ.",
            "Σₜ δᵢ⁽ᵗ⁾x / Σₜ δᵢ⁽ᵗ⁾ = x: local steps do not stop the closed form (the sweep asserts > 60 dB)."),
    # --- 08 Real federations --------------------------------------------------------------
    _number("08.q1", "A FedAvg client with lr = 0.1 and E = 5 local steps moves one weight from θ = 0.30 "
            "to θ′ = 0.20. Predict that entry of the curious server's message (θ − θ′)/(lr·E).", 0.2,
            "Divide the change of the weight by the product of the step size and the number of steps.",
            "(0.30 − 0.20)/(0.1 · 5) = 0.2 (`rl.flower.to_message`): the mean of the E local gradients, "
            "exactly the gradient for FedSGD (E = 1).", tolerance=1e-6),
    _choice("08.q2", "Which setting makes the first layer's bias gradient ∂b exactly zero, so Claim 1 has "
            "nothing to divide by?",
            ("a model trained for 20 rounds", "FedAvg with E = 20 local steps",
             "BatchNorm in train mode right after the first layer", "ReLU activations"), "c",
            "Which layer subtracts something from every unit's output, so that shifting the unit's "
            "bias changes nothing?",
            "BatchNorm in train mode subtracts the batch mean, so ∂b = Σᵢ δᵢ = 0; in eval mode it is a "
            "fixed affine map and the closed form is exact again."),
    _choice("08.q3", "ReLU kills about half of the first layer's units for a given image. For a client "
            "sending one image, the closed form",
            ("fails: dead units make it impossible", "stays exact: one live unit is enough",
             "returns half of the image", "needs BatchNorm"), "b",
            "Chapter 01: which units does `rl.analytic.reconstruct` use, and how many does it need?",
            "It stays exact: dead units (δ = 0) are skipped and any live unit gives x; only exact CNN "
            "inversion needs an invertible activation (ReLU fails there)."),
    _number("08.q4", "A first layer of h = 8 units, a client batch of B = 16 digits. Predict the rank of "
            "the first layer's weight gradient ∂W.", 8,
            "∂W = (1/B) Δ Xᵀ; the rank of a product is at most the smallest of its dimensions.",
            "min(h, B) = 8: the span solver can rebuild at most an 8-dimensional span, so a batch of 16 "
            "does not come back (chapter 02's h ≥ B)."),
    # --- 09 Malicious server --------------------------------------------------------------
    _number("09.q1", "An imprint with n = 128 bins, a batch of B = 64 images. Predict the expected "
            "fraction of the batch alone in its bin, (1 − 1/n)^(B−1), to two decimals.", 0.6101,
            "Each other image misses a given bin with probability 1 − 1/n; all B − 1 must miss.",
            "(127/128)^63 ≈ 0.61 (`rl.imprint.expected_fraction(64, 128)`); the stored 10-seed run "
            "measured 54 %.", tolerance=0.006),
    _number("09.q2", "What is the rank of the planted imprint layer's weight matrix (every row the same "
            "statistic)?", 1,
            "All units measure one statistic w·x against different thresholds.",
            "Rank 1: one shared row; that is also why a client checking its first layer's rank can "
            "spot the plain imprint (section 7)."),
    _choice("09.q3", "Against the imprint, secure aggregation over N clients",
            ("stops it once N·B > h", "does not help: images are sorted into bins before the sum",
             "halves what leaks", "hides the labels only"), "b",
            "Chapter 07's rule N·B > h is for an honest server; where does the planted layer act?",
            "The aggregate is one message of N·B images and every image alone in its bin still comes "
            "back; only client-side defences such as DP-SGD noise stop it."),
    _choice("09.q4", "Which defence stopped the imprint in section 7?",
            ("clipping alone", "DP-SGD noise (σ ≥ 1e-4 here)", "secure aggregation", "a larger batch"), "b",
            "It acts on each client's own gradient before any sum.",
            "Any DP-SGD noise buried the planted layer's tiny gradients; clipping alone left the "
            "candidates exact but unverifiable."),
)
