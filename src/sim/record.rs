//! `--record FILE`: the server records its game as it plays. The
//! simulation's thread only cuts the recording ([`Recorder`]: the inputs,
//! a hash a second, a copy of the state every 3 s); a thread of its own
//! encodes, compresses and writes it, flushing each second, so a server
//! that dies leaves a file that plays up to its last second.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use bevy::prelude::*;
use galaxy_sim::World;
use galaxy_sim::replay::{RecordChunk, Recorder, ReplayConfig, ReplayError, ReplayWriter};

use super::SimWorld;

/// Chunks waiting for the writer before the simulation waits for it (a
/// few seconds of game).
const QUEUE: usize = 64;

/// The game being recorded (see the module docs).
#[derive(Resource)]
pub struct Recording {
    path: PathBuf,
    recorder: Recorder,
    chunks: Vec<RecordChunk>,
    to_writer: Option<SyncSender<RecordChunk>>,
    writer: Option<JoinHandle<Result<u64, ReplayError>>>,
}

impl Recording {
    /// Starts recording `world` to a new file at `path` (replaced if it exists).
    pub fn start(world: &mut World, path: &Path) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| format!("--record {}: {e}", path.display()))?;
        let config = ReplayConfig::for_rate(world.config().tick_hz);
        let (recorder, header, first) = Recorder::start(world, config);
        let mut writer =
            ReplayWriter::new(BufWriter::new(file), &header).map_err(|e| e.to_string())?;
        let (tx, rx) = sync_channel::<RecordChunk>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("replay-writer".into())
            .spawn(move || {
                writer.write(&first)?;
                for chunk in rx {
                    writer.write(&chunk)?;
                    if matches!(chunk, RecordChunk::Span(_)) {
                        writer.flush()?;
                    }
                }
                writer.flush()?;
                Ok(writer.bytes_written())
            })
            .map_err(|e| e.to_string())?;
        Ok(Self {
            path: path.to_path_buf(),
            recorder,
            chunks: Vec::new(),
            to_writer: Some(tx),
            writer: Some(handle),
        })
    }

    /// Records the tick just stepped: call right after `World::step`.
    pub fn after_step(&mut self, world: &mut World) {
        self.recorder.after_step(world, &mut self.chunks);
        self.send();
    }

    /// Ends the recording after the last tick, and waits for the file.
    /// Returns its size.
    pub fn finish(&mut self, world: &mut World) -> Result<u64, String> {
        self.recorder.finish(world, &mut self.chunks);
        self.send();
        self.to_writer = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Ok(bytes))) => Ok(bytes),
            Some(Ok(Err(e))) => Err(e.to_string()),
            Some(Err(_)) => Err("the replay writer stopped".into()),
            None => Err("the recording had already ended".into()),
        }
    }

    fn send(&mut self) {
        let Some(tx) = &self.to_writer else {
            self.chunks.clear();
            return;
        };
        for chunk in self.chunks.drain(..) {
            if tx.send(chunk).is_err() {
                // The writer failed (disk full, say): say why, once.
                self.to_writer = None;
                if let Some(Ok(Err(e))) = self.writer.take().map(JoinHandle::join) {
                    error!(
                        "recording to {} stopped: {e}; the file plays up to here",
                        self.path.display()
                    );
                }
                return;
            }
        }
    }
}

/// Records the server's game to `path` from now on (see [`Recording`]),
/// and ends the file cleanly when the app exits.
pub fn record_game(app: &mut App, path: &Path) -> Result<(), String> {
    let recording = {
        let mut sim = app.world_mut().resource_mut::<SimWorld>();
        Recording::start(&mut sim.0, path)?
    };
    info!("recording the game to {}", path.display());
    app.insert_resource(recording)
        .add_systems(Last, finish_on_exit);
    Ok(())
}

fn finish_on_exit(
    mut exits: MessageReader<AppExit>,
    mut sim: ResMut<SimWorld>,
    recording: Option<ResMut<Recording>>,
) {
    if exits.read().next().is_none() {
        return;
    }
    let Some(mut rec) = recording else {
        return;
    };
    if rec.writer.is_none() {
        return;
    }
    match rec.finish(&mut sim.0) {
        Ok(bytes) => info!(
            "recorded {} ticks ({bytes} bytes) to {}",
            sim.0.tick(),
            rec.path.display()
        ),
        Err(e) => error!("recording to {}: {e}", rec.path.display()),
    }
}
