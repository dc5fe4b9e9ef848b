"""Golden CartPole-v1 trajectories from Gymnasium itself, for tests/cartpole.rs.

Run with Gymnasium 1.2.2 and NumPy (benches/requirements.txt):
    python tests/golden/cartpole_gymnasium.py
It prints the Rust constants that tests/cartpole.rs pastes in: for each case, the initial
state, the actions, and Gymnasium's float64 state after every step (`env.unwrapped.state`),
with the terminated / truncated flags of `gym.make("CartPole-v1")` (TimeLimit 500).
"""

import gymnasium as gym
import numpy as np


def run(initial, actions, integrator="euler", **physics):
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    cp = env.unwrapped
    cp.kinematics_integrator = integrator
    for k, v in physics.items():
        setattr(cp, k, v)
    cp.total_mass = cp.masspole + cp.masscart
    cp.polemass_length = cp.masspole * cp.length
    cp.state = np.array(initial, dtype=np.float64)
    states, flags = [], []
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        states.append([float(v) for v in cp.state])
        flags.append((term, trunc))
        if term or trunc:
            break
    return states, flags


def show(name, initial, actions, integrator="euler", **physics):
    states, flags = run(initial, actions, integrator, **physics)
    print(f"// {name}: integrator {integrator}, physics {physics or 'default'}")
    print(f"const {name}_INITIAL: [f64; 4] = {[repr(float(v)) for v in initial]};".replace("'", ""))
    print(f"const {name}_ACTIONS: [usize; {len(states)}] = {list(actions[: len(states)])};")
    print(f"const {name}_STATES: [[f64; 4]; {len(states)}] = [")
    for s in states:
        print("    [" + ", ".join(repr(v) for v in s) + "],")
    print("];")
    print(f"const {name}_TERMINATED_AT: Option<usize> = {next((f'Some({i})' for i, f in enumerate(flags) if f[0]), 'None')};")
    print()


rng = np.random.default_rng(2024)
acts = [int(a) for a in rng.integers(0, 2, size=40)]
show("EULER", [0.01, -0.02, 0.03, 0.04], acts)
show("SEMI", [0.01, -0.02, 0.03, 0.04], acts, "semi-implicit euler")
# A fast-falling pole: terminates within a few steps.
show("FALLING", [0.3, 1.2, 0.15, 1.9], [1] * 40)
# "What if": Moon gravity, a longer and heavier pole, a weaker push.
show("MOON", [-0.02, 0.1, -0.05, 0.3], acts, gravity=1.6, length=1.0, masspole=0.3, force_mag=5.0)

# Truncation: a simple controller that keeps the pole up for the whole 500 steps.
env = gym.make("CartPole-v1")
env.reset(seed=0)
env.unwrapped.state = np.array([0.01, 0.0, -0.01, 0.0])
s = env.unwrapped.state
for t in range(1, 600):
    a = int(s[2] + 0.5 * s[3] + 0.01 * s[0] + 0.1 * s[1] > 0)
    _, _, term, trunc, _ = env.step(a)
    s = env.unwrapped.state
    if term or trunc:
        print(f"// controller a = [theta + 0.5 theta_dot + 0.01 x + 0.1 x_dot > 0] from [0.01, 0, -0.01, 0]:")
        print(f"// Gymnasium ends at step {t}: terminated={term}, truncated={trunc}")
        break
