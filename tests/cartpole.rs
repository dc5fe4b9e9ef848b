//! CartPole-v1 against Gymnasium itself, hand-derived steps, and the episode boundaries.

use mlplay::cartpole::{
    is_terminal, observe, reset_state, trace, CartPole, Integrator, Physics, VecEnv,
    MAX_EPISODE_STEPS, THETA_THRESHOLD, X_THRESHOLD,
};
use mlplay::rng::Rng;

// ---- Gymnasium's own trajectories -------------------------------------------------------
// Printed by tests/golden/cartpole_gymnasium.py with Gymnasium 1.2.2 (float64 `state` after
// each `env.step` of gym.make("CartPole-v1")); pasted verbatim.

// EULER: integrator euler, physics default
const EULER_INITIAL: [f64; 4] = [0.01, -0.02, 0.03, 0.04];
const EULER_ACTIONS: [usize; 15] = [0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0];
const EULER_STATES: [[f64; 4]; 15] = [
    [
        0.009600000000000001,
        -0.21553901710278936,
        0.030799999999999998,
        0.34199522377603914,
    ],
    [
        0.005289219657944213,
        -0.020868498014729647,
        0.03763990447552078,
        0.059181706756417596,
    ],
    [
        0.0048718496976496205,
        -0.21650935060944054,
        0.038823538610649126,
        0.36349864682406996,
    ],
    [
        0.0005416626854608097,
        -0.41216095828914867,
        0.046093511547130525,
        0.6681661649049611,
    ],
    [
        -0.007701556480322164,
        -0.6078925459821091,
        0.05945683484522975,
        0.9749984057238056,
    ],
    [
        -0.019859407399964345,
        -0.8037594724974891,
        0.07895680295970586,
        1.2857496514638576,
    ],
    [
        -0.035934596849914124,
        -0.6097262915598388,
        0.10467179598898302,
        1.018795824978397,
    ],
    [
        -0.0481291226811109,
        -0.41614337032145876,
        0.12504771248855096,
        0.7607280344471149,
    ],
    [
        -0.05645199008754008,
        -0.22294563280720406,
        0.14026227317749326,
        0.5098625315263425,
    ],
    [
        -0.06091090274368416,
        -0.030049374467669476,
        0.1504595238080201,
        0.26446171818033104,
    ],
    [
        -0.06151189023303755,
        -0.2269627669248168,
        0.15574875817162673,
        0.6005631944254844,
    ],
    [
        -0.06605114557153388,
        -0.4238811487262685,
        0.1677600220601364,
        0.9379706489669232,
    ],
    [
        -0.07452876854605925,
        -0.23136964443669583,
        0.18651943503947488,
        0.7023477474031984,
    ],
    [
        -0.07915616143479316,
        -0.42851963540600746,
        0.20056638998753884,
        1.047462877245521,
    ],
    [
        -0.0877265541429133,
        -0.625655710330296,
        0.22151564753244926,
        1.3958112475842002,
    ],
];
const EULER_TERMINATED_AT: Option<usize> = Some(14);

// SEMI: integrator semi-implicit euler, physics default
const SEMI_INITIAL: [f64; 4] = [0.01, -0.02, 0.03, 0.04];
const SEMI_ACTIONS: [usize; 14] = [0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0];
const SEMI_STATES: [[f64; 4]; 14] = [
    [
        0.005689219657944213,
        -0.21553901710278936,
        0.03683990447552078,
        0.34199522377603914,
    ],
    [
        0.005270018909633617,
        -0.020960037415529792,
        0.03806296993201804,
        0.061153272824862825,
    ],
    [
        0.0009378894870768501,
        -0.21660647112783835,
        0.045374933379955185,
        0.36559817239685716,
    ],
    [
        -0.007308968313536309,
        -0.41234289003065794,
        0.05881965851603133,
        0.6722362568038074,
    ],
    [
        -0.019473588454418978,
        -0.6082310070441335,
        0.07847652442303757,
        0.982843295350312,
    ],
    [
        -0.03555982348121921,
        -0.8043117513400115,
        0.10445867678610252,
        1.2991076181532477,
    ],
    [
        -0.047773011253443326,
        -0.6106593886112058,
        0.12527602596964693,
        1.0408674591772207,
    ],
    [
        -0.05612109200563808,
        -0.41740403760973754,
        0.141075847410232,
        0.7899910720292527,
    ],
    [
        -0.06061053347585638,
        -0.22447207351091525,
        0.15197198871342593,
        0.5448070651596975,
    ],
    [
        -0.06124604393703219,
        -0.031775523058790334,
        0.15804402102052365,
        0.3036016153548853,
    ],
    [
        -0.06582115045094065,
        -0.2287553256954233,
        0.17087723374791886,
        0.6416606363697603,
    ],
    [
        -0.07433705600342516,
        -0.42579527762422503,
        0.1905354297988408,
        0.982909802546097,
    ],
    [
        -0.07901037487752892,
        -0.23366594370518778,
        0.20564763673437522,
        0.7556103467767206,
    ],
    [
        -0.08762915668263965,
        -0.4309390902555368,
        0.22775403846186537,
        1.105320086374507,
    ],
];
const SEMI_TERMINATED_AT: Option<usize> = Some(13);

// FALLING: integrator euler, physics default
const FALLING_INITIAL: [f64; 4] = [0.3, 1.2, 0.15, 1.9];
const FALLING_ACTIONS: [usize; 2] = [1, 1];
const FALLING_STATES: [[f64; 4]; 2] = [
    [0.324, 1.3932134521679944, 0.188, 1.6573690008894002],
    [
        0.3518642690433599,
        1.585711154462796,
        0.221147380017788,
        1.4286571509656116,
    ],
];
const FALLING_TERMINATED_AT: Option<usize> = Some(1);

// MOON: integrator euler, physics {'gravity': 1.6, 'length': 1.0, 'masspole': 0.3, 'force_mag': 5.0}
const MOON_INITIAL: [f64; 4] = [-0.02, 0.1, -0.05, 0.3];
const MOON_ACTIONS: [usize; 26] = [
    0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0,
];
const MOON_STATES: [[f64; 4]; 26] = [
    [
        -0.018000000000000002,
        0.0073344116460031805,
        -0.044000000000000004,
        0.368212835311159,
    ],
    [
        -0.017853311767079938,
        0.10058093958879397,
        -0.03663574329377682,
        0.2972899661152961,
    ],
    [
        -0.015841692975304057,
        0.007810819922180079,
        -0.030689943971470898,
        0.36594180717775066,
    ],
    [
        -0.015685476576860456,
        -0.08501165555313038,
        -0.023371107827915884,
        0.4347894382137619,
    ],
    [
        -0.017385709687923065,
        -0.1778924768479491,
        -0.014675319063640646,
        0.5038701749069673,
    ],
    [
        -0.020943559224882047,
        -0.2708340617647961,
        -0.0045979155655013,
        0.5732166625775494,
    ],
    [
        -0.02636024046017797,
        -0.1777888549290345,
        0.006866417686049689,
        0.5033231455094231,
    ],
    [
        -0.02991601755875866,
        -0.08480279553124202,
        0.016932880596238153,
        0.4337500377134224,
    ],
    [
        -0.0316120734693835,
        0.00811927516951004,
        0.025607881350506602,
        0.36447484522982876,
    ],
    [
        -0.0314496879659933,
        0.10097733517137925,
        0.03289737825510318,
        0.2954686558147987,
    ],
    [
        -0.02943014126256572,
        0.0077710342231790686,
        0.038806751371399155,
        0.3661249528543522,
    ],
    [
        -0.029274720578102136,
        -0.08545347908671888,
        0.0461292504284862,
        0.4369218254440776,
    ],
    [
        -0.030983790159836513,
        0.007269121915174759,
        0.05486768693736775,
        0.3685605604180704,
    ],
    [
        -0.03083840772153302,
        -0.08602058253586321,
        0.06223889814572916,
        0.43973871209835713,
    ],
    [
        -0.03255881937225028,
        -0.1793169447089013,
        0.0710336723876963,
        0.5110682717286943,
    ],
    [
        -0.03614515826642831,
        -0.2726125323880436,
        0.08125503782227018,
        0.5825668805504162,
    ],
    [
        -0.04159740891418918,
        -0.18010491169670084,
        0.09290637543327851,
        0.5153630537167633,
    ],
    [
        -0.045199507148123194,
        -0.27344118411108814,
        0.10321363650761378,
        0.5872899066260604,
    ],
    [
        -0.05066833083034496,
        -0.36674518756037566,
        0.11495943464013499,
        0.6593682317063339,
    ],
    [
        -0.058003234581552474,
        -0.4599964861016527,
        0.12814679927426167,
        0.7315980257768826,
    ],
    [
        -0.06720316430358553,
        -0.5531683978596482,
        0.14277875978979931,
        0.8039710949029066,
    ],
    [
        -0.0782665322607785,
        -0.4609658802856326,
        0.15885818168785745,
        0.7389379269785453,
    ],
    [
        -0.08748584986649115,
        -0.3689884374206888,
        0.17363694022742837,
        0.6746200225569964,
    ],
    [
        -0.09486561861490492,
        -0.2772392383671843,
        0.1871293406785683,
        0.6109892293033821,
    ],
    [
        -0.1004104033822486,
        -0.18571563546223252,
        0.19934912526463594,
        0.548009807142456,
    ],
    [
        -0.10412471609149325,
        -0.27894182925005395,
        0.21030932140748507,
        0.6212974947050349,
    ],
];
const MOON_TERMINATED_AT: Option<usize> = Some(25);

fn assert_trajectory(
    name: &str,
    physics: &Physics,
    initial: [f64; 4],
    actions: &[usize],
    states: &[[f64; 4]],
    terminated_at: Option<usize>,
) {
    let t = trace(physics, 0, Some(initial), actions);
    assert_eq!(t.states.len(), states.len(), "{name}: trace length");
    for (i, (got, want)) in t.states.iter().zip(states).enumerate() {
        for k in 0..4 {
            assert!(
                (got[k] - want[k]).abs() < 1e-12,
                "{name} step {i} var {k}: {} vs Gymnasium {}",
                got[k],
                want[k]
            );
        }
    }
    let first_term = t.terminated.iter().position(|&b| b);
    assert_eq!(first_term, terminated_at, "{name}: terminated at");
    // The trace stops right after the first terminated step.
    if let Some(i) = terminated_at {
        assert_eq!(t.states.len(), i + 1);
    }
    assert!(
        t.truncated.iter().all(|&b| !b),
        "{name}: no truncation this early"
    );
}

#[test]
fn euler_matches_gymnasium() {
    assert_trajectory(
        "euler",
        &Physics::default(),
        EULER_INITIAL,
        &EULER_ACTIONS,
        &EULER_STATES,
        EULER_TERMINATED_AT,
    );
}

#[test]
fn semi_implicit_euler_matches_gymnasium() {
    let physics = Physics {
        integrator: Integrator::SemiImplicitEuler,
        ..Physics::default()
    };
    assert_trajectory(
        "semi",
        &physics,
        SEMI_INITIAL,
        &SEMI_ACTIONS,
        &SEMI_STATES,
        SEMI_TERMINATED_AT,
    );
}

#[test]
fn a_falling_pole_terminates_where_gymnasium_does() {
    assert_trajectory(
        "falling",
        &Physics::default(),
        FALLING_INITIAL,
        &FALLING_ACTIONS,
        &FALLING_STATES,
        FALLING_TERMINATED_AT,
    );
}

#[test]
fn changed_physics_match_gymnasium() {
    let physics = Physics {
        gravity: 1.6,
        length: 1.0,
        masspole: 0.3,
        force_mag: 5.0,
        ..Physics::default()
    };
    assert_trajectory(
        "moon",
        &physics,
        MOON_INITIAL,
        &MOON_ACTIONS,
        &MOON_STATES,
        MOON_TERMINATED_AT,
    );
}

// ---- By hand --------------------------------------------------------------------------

/// From the zero state, push right (F = 10): sin 0 = 0, cos 0 = 1, so
///   temp = 10 / 1.1 = 100/11,
///   θ̈ = (0 − 100/11) / (0.5 (4/3 − 0.1/1.1)) = −(100/11) / (41/66) = −600/41,
///   ẍ = 100/11 − 0.05 (−600/41) / 1.1 = 100/11 + 300/451 = 4400/451.
/// Euler moves the positions with the old (zero) velocities: x = θ = 0, ẋ = 0.02 · 4400/451
/// = 88/451, θ̇ = −12/41. Semi-implicit moves them with the new ones: x = 0.02 · 88/451,
/// θ = −0.02 · 12/41.
#[test]
fn one_push_from_rest_by_hand() {
    let zero = [0.0; 4];
    let p = Physics::default();
    let (xacc, thetaacc) = p.accelerations(&zero, 10.0);
    assert!((xacc - 4400.0 / 451.0).abs() < 1e-12);
    assert!((thetaacc + 600.0 / 41.0).abs() < 1e-12);
    let s = p.step(&zero, 1);
    let want = [0.0, 88.0 / 451.0, 0.0, -12.0 / 41.0];
    for k in 0..4 {
        assert!((s[k] - want[k]).abs() < 1e-12, "euler var {k}: {}", s[k]);
    }
    let semi = Physics {
        integrator: Integrator::SemiImplicitEuler,
        ..Physics::default()
    };
    let s = semi.step(&zero, 1);
    let want = [
        0.02 * 88.0 / 451.0,
        88.0 / 451.0,
        -0.02 * 12.0 / 41.0,
        -12.0 / 41.0,
    ];
    for k in 0..4 {
        assert!((s[k] - want[k]).abs() < 1e-12, "semi var {k}: {}", s[k]);
    }
    // Pushing left from rest is the mirror image.
    let l = p.step(&zero, 0);
    assert_eq!(l[1], -88.0 / 451.0);
    assert_eq!(l[3], 12.0 / 41.0);
}

/// The mirror symmetry of the equations: flipping the state and the push flips the result.
#[test]
fn dynamics_are_mirror_symmetric() {
    let p = Physics::default();
    let mut rng = Rng::new(5);
    for _ in 0..100 {
        let s: [f64; 4] = std::array::from_fn(|_| rng.uniform_range(-1.0, 1.0));
        let m = s.map(|v| -v);
        let (a, b) = (p.step(&s, 1), p.step(&m, 0));
        for k in 0..4 {
            assert!((a[k] + b[k]).abs() < 1e-15, "{s:?}");
        }
    }
}

// ---- Episode boundaries -----------------------------------------------------------------

#[test]
fn termination_thresholds_are_strict_inequalities() {
    // 12 degrees = 12 · 2π / 360 rad.
    assert!((THETA_THRESHOLD - 0.20943951023931953).abs() < 1e-16);
    assert_eq!(X_THRESHOLD, 2.4);
    let at = |x: f64, th: f64| is_terminal(&[x, 0.0, th, 0.0]);
    assert!(
        !at(2.4, 0.0) && !at(-2.4, 0.0),
        "|x| = 2.4 is still allowed"
    );
    assert!(at(2.4 + 1e-12, 0.0) && at(-2.4 - 1e-12, 0.0));
    assert!(!at(0.0, THETA_THRESHOLD) && !at(0.0, -THETA_THRESHOLD));
    assert!(at(0.0, THETA_THRESHOLD + 1e-12) && at(0.0, -THETA_THRESHOLD - 1e-12));
    // Velocities never terminate.
    assert!(!is_terminal(&[0.0, 1e6, 0.0, -1e6]));
}

/// The controller a = [θ + 0.5 θ̇ + 0.01 x + 0.1 ẋ > 0] from [0.01, 0, −0.01, 0] keeps the
/// pole up; in Gymnasium (tests/golden/cartpole_gymnasium.py) its episode ends at step 500,
/// truncated and not terminated.
#[test]
fn truncation_at_500_steps() {
    let p = Physics::default();
    let mut env = CartPole::new([0.01, 0.0, -0.01, 0.0]);
    for t in 1..=MAX_EPISODE_STEPS {
        let s = env.state;
        let a = usize::from(s[2] + 0.5 * s[3] + 0.01 * s[0] + 0.1 * s[1] > 0.0);
        let step = env.step(&p, a);
        assert!(!step.terminated, "fell at step {t}");
        assert_eq!(step.truncated, t == 500, "step {t}");
        assert_eq!(step.reward, 1.0);
    }
}

#[test]
fn reset_is_uniform_in_the_small_box() {
    let mut rng = Rng::new(11);
    let mut sums = [0.0; 4];
    let n = 20_000;
    for _ in 0..n {
        let s = reset_state(&mut rng);
        for k in 0..4 {
            assert!((-0.05..0.05).contains(&s[k]));
            sums[k] += s[k];
        }
    }
    // U(−0.05, 0.05) has mean 0 and standard deviation 0.1/√12 ≈ 0.0289; the mean of n
    // draws has standard error 0.0289/√20000 ≈ 2.0e-4.
    for s in sums {
        assert!((s / n as f64).abs() < 1e-3);
    }
}

#[test]
fn observations_are_the_state_rounded_to_f32() {
    let s = [0.1, -0.2, 1.0 / 3.0, 1e-9];
    let o = observe(&s);
    for k in 0..4 {
        assert_eq!(o[k], s[k] as f32 as f64);
    }
    assert_ne!(o[2], s[2], "1/3 is not an f32");
}

/// Same-step auto-reset: an environment whose episode ends starts a new one at once, the
/// ended episode's return and final observation are reported, and an episode that runs to
/// the time limit is truncated, not terminated.
#[test]
fn vectorised_envs_auto_reset_and_report_episodes() {
    let p = Physics::default();
    let mut v = VecEnv::new(3, Rng::new(3));
    let mut out = vec![
        mlplay::cartpole::VecTransition {
            reward: 0.0,
            terminated: false,
            truncated: false,
            final_obs: None,
            episode_return: None,
        };
        3
    ];
    let mut lengths = [0usize; 3];
    let mut ended = 0;
    for _ in 0..200 {
        // Always push right: every episode falls within a few dozen steps.
        v.step(&p, &[1, 1, 1], &mut out);
        for (e, tr) in out.iter().enumerate() {
            lengths[e] += 1;
            if tr.terminated {
                let fo = tr.final_obs.expect("a final observation");
                assert!(fo[0].abs() > X_THRESHOLD || fo[2].abs() > THETA_THRESHOLD);
                assert_eq!(tr.episode_return, Some(lengths[e] as f64));
                lengths[e] = 0;
                ended += 1;
                // Already reset: the new state is back in the small box.
                assert!(v.envs[e].state.iter().all(|x| x.abs() <= 0.05));
                assert_eq!(v.envs[e].steps, 0);
            } else {
                assert!(tr.final_obs.is_none() && tr.episode_return.is_none());
            }
        }
    }
    assert!(ended >= 3 * 200 / 60, "{ended} episodes ended");
    v.resize(5);
    assert_eq!(v.len(), 5);
    v.resize(2);
    assert_eq!(v.len(), 2);
}
