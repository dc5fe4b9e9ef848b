"""The PyTorch peer of `<ml-cartpole-ppo>`: PPO on Gymnasium's CartPole-v1, for the speed benchmark.

The same algorithm as crate/src/ppo.rs, written the way CleanRL's ppo.py writes it: vectorised
environments (same-step autoreset), GAE with truncation bootstrapped from the final observation,
per-minibatch advantage normalisation, the clipped surrogate, entropy bonus, Adam (eps 1e-5),
global gradient-norm clipping 0.5, linear learning-rate annealing, orthogonal initialisation.
A run stops as soon as the mean return of the last 20 finished episodes reaches 475.

    python benches/cartpole_peer.py --preset fast --seeds 1,2,3 [--threads 1]

prints one JSON line per seed: {"seed", "preset", "solved_at_steps", "wall_s", "updates"}.
Wall time counts from the first env.reset to the step at which the run is solved, the same
span the widget and the CLI report. Versions are pinned in benches/requirements.txt.
"""

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

# The presets of crate/src/cartpole_ppo.rs that matter here.
PRESETS = {
    # mlplay's fast preset.
    "fast": dict(envs=8, steps=32, lr=7.5e-3, gamma=0.98, lam=0.8, epochs=3, minibatch=32, hidden=16,
                 ent=0.0, vf=0.5, clip=0.2, anneal_clip=False),
    # RL Baselines3 Zoo's tuned CartPole-v1 (PPO, 1e5 steps).
    "rl-zoo": dict(envs=8, steps=32, lr=1e-3, gamma=0.98, lam=0.8, epochs=20, minibatch=256, hidden=64,
                   ent=0.0, vf=0.5, clip=0.2, anneal_clip=True),
}
BUDGET = 100_000


def layer(n_in, n_out, gain):
    lin = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(lin.weight, gain)
    nn.init.constant_(lin.bias, 0.0)
    return lin


class Agent(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        g = np.sqrt(2)
        self.actor = nn.Sequential(layer(4, hidden, g), nn.Tanh(), layer(hidden, hidden, g), nn.Tanh(),
                                   layer(hidden, 2, 0.01))
        self.critic = nn.Sequential(layer(4, hidden, g), nn.Tanh(), layer(hidden, hidden, g), nn.Tanh(),
                                    layer(hidden, 1, 1.0))


def run(preset, seed):
    p = PRESETS[preset]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1") for _ in range(p["envs"])],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    agent = Agent(p["hidden"])
    params = list(agent.parameters())
    opt = torch.optim.Adam(params, lr=p["lr"], eps=1e-5)
    n, t_max = p["envs"], p["steps"]
    batch = n * t_max
    start = time.perf_counter()
    obs, _ = envs.reset(seed=seed)
    obs = torch.tensor(obs, dtype=torch.float32)
    ep_ret = np.zeros(n)
    returns = []
    env_steps = 0
    update = 0
    while env_steps < BUDGET:
        update += 1
        frac = 1.0 - env_steps / BUDGET
        opt.param_groups[0]["lr"] = p["lr"] * frac
        clip = p["clip"] * (frac if p["anneal_clip"] else 1.0)
        b_obs = torch.zeros(t_max, n, 4)
        b_act = torch.zeros(t_max, n, dtype=torch.long)
        b_logp = torch.zeros(t_max, n)
        b_val = torch.zeros(t_max, n)
        b_rew = torch.zeros(t_max, n)
        b_term = torch.zeros(t_max, n)
        b_end = torch.zeros(t_max, n)
        b_final = torch.zeros(t_max, n)  # V(final observation) of truncated episodes
        for t in range(t_max):
            with torch.no_grad():
                logits = agent.actor(obs)
                value = agent.critic(obs).squeeze(-1)
                dist = torch.distributions.Categorical(logits=logits)
                action = dist.sample()
            b_obs[t], b_act[t], b_logp[t], b_val[t] = obs, action, dist.log_prob(action), value
            nxt, rew, term, trunc, info = envs.step(action.numpy())
            env_steps += n
            ended = term | trunc
            b_rew[t] = torch.tensor(rew, dtype=torch.float32)
            b_term[t] = torch.tensor(term, dtype=torch.float32)
            b_end[t] = torch.tensor(ended, dtype=torch.float32)
            nxt_t = torch.tensor(nxt, dtype=torch.float32)
            cut = trunc & ~term
            if cut.any():
                with torch.no_grad():
                    final = torch.tensor(np.stack([info["final_obs"][i] for i in np.nonzero(cut)[0]]),
                                         dtype=torch.float32)
                    b_final[t, torch.from_numpy(np.nonzero(cut)[0])] = agent.critic(final).squeeze(-1)
            ep_ret += rew
            for i in np.nonzero(ended)[0]:
                returns.append(ep_ret[i])
                ep_ret[i] = 0.0
                if len(returns) >= 20 and np.mean(returns[-20:]) >= 475.0:
                    wall = time.perf_counter() - start
                    envs.close()
                    return dict(seed=seed, preset=preset, solved_at_steps=int(env_steps - n + i + 1),
                                wall_s=wall, updates=update - 1)
            obs = nxt_t
        # GAE, truncation bootstrapped (b_next), termination not.
        with torch.no_grad():
            last_v = agent.critic(obs).squeeze(-1)
            b_next = torch.cat([b_val[1:], last_v[None]])
            b_next = torch.where(b_end.bool(), b_final, b_next)
            adv = torch.zeros(t_max, n)
            last = torch.zeros(n)
            for t in reversed(range(t_max)):
                delta = b_rew[t] + p["gamma"] * b_next[t] * (1 - b_term[t]) - b_val[t]
                last = delta + p["gamma"] * p["lam"] * (1 - b_end[t]) * last
                adv[t] = last
            ret = adv + b_val
        f_obs, f_act, f_logp = b_obs.reshape(-1, 4), b_act.reshape(-1), b_logp.reshape(-1)
        f_adv, f_ret = adv.reshape(-1), ret.reshape(-1)
        m = min(p["minibatch"], batch)
        for _ in range(p["epochs"]):
            perm = torch.from_numpy(rng.permutation(batch))
            for lo in range(0, batch, m):
                idx = perm[lo:lo + m]
                logits = agent.actor(f_obs[idx])
                dist = torch.distributions.Categorical(logits=logits)
                logp = dist.log_prob(f_act[idx])
                ratio = (logp - f_logp[idx]).exp()
                a = f_adv[idx]
                if len(idx) > 1:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - clip, 1 + clip)).mean()
                v = agent.critic(f_obs[idx]).squeeze(-1)
                v_loss = 0.5 * ((v - f_ret[idx]) ** 2).mean()
                loss = pg - p["ent"] * dist.entropy().mean() + p["vf"] * v_loss
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, 0.5)
                opt.step()
    envs.close()
    return dict(seed=seed, preset=preset, solved_at_steps=None, wall_s=time.perf_counter() - start,
                updates=update)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="fast", choices=sorted(PRESETS))
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for s in a.seeds.split(","):
        r = run(a.preset, int(s))
        r["threads"] = a.threads
        r["torch"] = torch.__version__
        r["gymnasium"] = gym.__version__
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
