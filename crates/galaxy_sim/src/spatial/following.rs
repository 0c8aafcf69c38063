//! The grid between ticks: moving a tick's walkers in the grid is only
//! needed by the next tick, so a big world hands that work to a thread of
//! its own and the caller goes on (mirroring, encoding, sending) while it
//! runs. Whoever needs the grid next waits for it; nothing else can see
//! the difference.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, PoisonError};

use super::{Grid, Walk};

/// A [`Grid`], or the thread bringing it up to date.
#[derive(Default)]
pub(crate) struct FollowingGrid(Mutex<State>);

#[derive(Default)]
struct State {
    /// The grid, when the worker does not hold it.
    grid: Option<Grid>,
    /// The walks of the last job, emptied: handed to the caller of the
    /// next one to fill, so a tick's walks need no new allocation.
    spare: Vec<Walk>,
    /// The thread that follows walks, started on first use.
    worker: Option<Worker>,
    /// The worker holds the grid.
    following: bool,
}

/// Work for the follow thread: the grid and the arguments of
/// [`Grid::end_tick`] (walks, threads, next tick).
type Work = (Grid, Vec<Walk>, usize, u64);

/// Does one job: the grid brought up to date, and its walks emptied.
fn follow((mut grid, mut walks, threads, next_tick): Work) -> (Grid, Vec<Walk>) {
    grid.end_tick(&walks, threads, next_tick);
    walks.clear();
    (grid, walks)
}

/// A thread that follows walks; it stops when its owner drops the sender.
/// It gives back the grid and the walks (emptied, for their room).
struct Worker {
    work: Sender<Work>,
    done: Receiver<(Grid, Vec<Walk>)>,
}

impl Worker {
    /// A new follow thread, or `None` if the system has none to give.
    fn start() -> Option<Self> {
        let (work, jobs) = channel::<Work>();
        let (finished, done) = channel();
        std::thread::Builder::new()
            .name("galaxy-sim-follow".into())
            .spawn(move || {
                for job in jobs {
                    if finished.send(follow(job)).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Self { work, done })
    }
}

impl State {
    /// The grid, after waiting for the walks the worker is following.
    fn ready(&mut self) -> &mut Grid {
        if std::mem::take(&mut self.following) {
            let back = self.worker.as_ref().and_then(|w| w.done.recv().ok());
            // The worker only drops a grid by panicking, a bug in
            // `Grid::follow` it has already reported.
            let (grid, walks) = back.expect("the grid's follow thread panicked");
            (self.grid, self.spare) = (Some(grid), walks);
        }
        self.grid.get_or_insert_with(Grid::default)
    }
}

impl FollowingGrid {
    /// The grid, up to date: waits for the walks it is following.
    pub(crate) fn get_mut(&mut self) -> &mut Grid {
        self.0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .ready()
    }

    /// Calls `f` with the grid, up to date, through a shared reference.
    fn with<R>(&self, f: impl FnOnce(&Grid) -> R) -> R {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(state.ready())
    }

    /// [`Grid::end_tick`] on the follow thread: returns at once, and the
    /// next use of the grid waits for it. Without a thread, runs here.
    /// Takes the `walks` and leaves an empty list with room in their place
    /// (the one a previous job used).
    pub(crate) fn end_tick_in_background(
        &mut self,
        walks: &mut Vec<Walk>,
        threads: usize,
        next_tick: u64,
    ) {
        let state = self.0.get_mut().unwrap_or_else(PoisonError::into_inner);
        let grid = std::mem::take(state.ready());
        let walks = std::mem::replace(walks, std::mem::take(&mut state.spare));
        if state.worker.is_none() {
            state.worker = Worker::start();
        }
        let job = (grid, walks, threads, next_tick);
        // The job comes back if there is no worker to take it.
        let refused = match &state.worker {
            Some(worker) => worker.work.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        match refused {
            None => state.following = true,
            Some(job) => {
                let (grid, walks) = follow(job);
                (state.grid, state.spare) = (Some(grid), walks);
            }
        }
    }
}

impl Clone for FollowingGrid {
    fn clone(&self) -> Self {
        let grid = self.with(Grid::clone);
        Self(Mutex::new(State {
            grid: Some(grid),
            ..State::default()
        }))
    }
}

impl PartialEq for FollowingGrid {
    fn eq(&self, other: &Self) -> bool {
        // (One grid's lock, taken twice, would never be released.)
        std::ptr::eq(self, other) || self.with(|a| other.with(|b| a == b))
    }
}

impl Eq for FollowingGrid {}

impl std::fmt::Debug for FollowingGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with(|grid| grid.fmt(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::WorldPos;

    /// Walks followed on the follow thread give the grid that following
    /// them in place gives, whether it is next used mutably, cloned or
    /// compared (each waits for the thread), tick after tick; each job's
    /// list of walks comes back for the next job to fill.
    #[test]
    fn following_in_background_gives_the_same_grid() {
        let mut here = Grid::default();
        let mut at: Vec<WorldPos> = (0..10_000u64)
            .map(|id| WorldPos::new(id as i64 * 150, (id % 7) as i64 * 300))
            .collect();
        for (id, p) in at.iter().enumerate() {
            here.update(id as u64, Some((id as u64 % 3, *p)));
        }
        let mut background = FollowingGrid::default();
        *background.get_mut() = here.clone();
        for round in 0..3u64 {
            // Every unit walks a little, one in three to another cell.
            let mut walks: Vec<Walk> = at
                .iter_mut()
                .enumerate()
                .map(|(id, p)| {
                    let step = if id % 3 == 0 { 1_500 } else { 40 };
                    let from = *p;
                    *p = WorldPos::new(from.x + step, from.y - step);
                    let id = id as u64;
                    Walk {
                        id,
                        owner: id % 3,
                        from,
                        to: *p,
                    }
                })
                .collect();
            here.end_tick(&walks, 2, round + 1);
            background.end_tick_in_background(&mut walks, 2, round + 1);
            // The walks are taken; from the second job on, the list given
            // back is the last job's, emptied, with its room.
            assert!(walks.is_empty());
            assert_eq!(walks.capacity() >= at.len(), round > 0, "round {round}");
            match round {
                0 => assert!(background.clone().get_mut() == &here),
                1 => assert!(background == background.clone()),
                _ => assert!(background.get_mut() == &here),
            }
        }
        assert!(
            background == background,
            "compared with itself, without waiting on itself"
        );
        assert!(*background.get_mut() == here);
    }
}
