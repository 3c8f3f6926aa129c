//! Two separately built programs meet on a named segment holding their own
//! `#[repr(C)]` struct: this one (the referee) creates it, `meet_reader` (a player)
//! opens it. Nothing is shared between the two source files: each defines `Table`,
//! `Board` and `Move` itself, as two unrelated programs would.
//!
//! ```sh
//! cargo run --example meet_writer   # waits for a player: in another terminal, run
//! cargo run --example meet_reader   # (either may start first)
//! ```
//!
//! When `meet_reader` is built next to it (`cargo build --examples`), the writer
//! starts it by itself.
//!
//! What makes the meeting work:
//! - `#[derive(ShmSafe)]` on a `#[repr(C)]` struct checks every field, and records the
//!   type's name and layout in the segment's header. The name is the bare type name,
//!   or the one given with `#[type_name("…")]`; never the crate path, which differs
//!   between programs. `open` compares both, and a mismatch is an error naming the two
//!   types.
//! - `Shared::open_or_create_zeroed` creates the segment, opens it if it exists, or
//!   replaces it if its creator died (a restarted referee after `kill -9`).
//! - `Shared::open_timeout` in the player waits for the segment to appear.

use std::process::{Child, Command};
use std::time::Duration;

use shmkit::{Event, Mutex, Pod, Queue, Shared, ShmSafe, Zeroable};

/// The segment's name: `/dev/shm/shmkit-example-meet`.
const NAME: &str = "shmkit-example-meet";
const PATIENCE: Duration = Duration::from_secs(60);

/// A move: `player` (1 or 2) takes `cell` (0..9). Items of a `Queue` need `Pod`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Move {
    player: u32,
    cell: u32,
}

/// The board, guarded by a `Mutex`, so it needs `ShmSafe` too. 9 + 1 + 1 + 1 `u32`s:
/// no padding, as `Pod` requires.
#[derive(Clone, Copy, Debug, Pod, Zeroable, ShmSafe)]
#[repr(C)]
#[type_name("meet.Board")]
struct Board {
    cells: [u32; 9],
    moves: u32,
    winner: u32,
    refused: u32,
}

/// Everything both programs share, in one named segment: kit types can be fields of
/// your own struct. `Zeroable`: all-zero is a valid fresh table (an empty queue, an
/// unlocked mutex, an unset event), so it is built in place.
#[derive(ShmSafe, Zeroable)]
#[repr(C)]
#[type_name("meet.Table")]
struct Table {
    moves: Queue<Move, 16>,
    board: Mutex<Board>,
    game_over: Event,
}

const LINES: [[usize; 3]; 8] = [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7, 8],
    [0, 3, 6],
    [1, 4, 7],
    [2, 5, 8],
    [0, 4, 8],
    [2, 4, 6],
];

fn winner(cells: &[u32; 9]) -> u32 {
    LINES
        .iter()
        .find(|l| cells[l[0]] != 0 && l.iter().all(|&c| cells[c] == cells[l[0]]))
        .map_or(0, |l| cells[l[0]])
}

/// Starts `meet_reader` if it was built next to this program.
fn start_player() -> Option<Child> {
    let exe = std::env::current_exe().ok()?;
    let player = exe.with_file_name("meet_reader");
    if !player.exists() || std::env::args().any(|a| a == "--no-spawn") {
        return None;
    }
    println!("referee: starting {}", player.display());
    Command::new(player).spawn().ok()
}

fn main() -> Result<(), shmkit::Error> {
    let table = Shared::<Table>::open_or_create_zeroed(NAME)?;
    println!(
        "referee: {} /dev/shm/{NAME}",
        if table.is_creator() {
            "created"
        } else {
            "opened"
        }
    );
    let mut player = start_player();
    if player.is_none() {
        println!("referee: waiting for a player: run `cargo run --example meet_reader`");
    }

    loop {
        let m = table.moves.get_timeout(PATIENCE)?;
        let mut board = table.board.lock()?;
        let cell = m.cell as usize;
        if cell >= 9 || board.cells[cell] != 0 || !(1..=2).contains(&m.player) {
            board.refused += 1;
            continue;
        }
        board.cells[cell] = m.player;
        board.moves += 1;
        board.winner = winner(&board.cells);
        println!("referee: player {} takes cell {cell}", m.player);
        if board.winner != 0 || board.moves == 9 {
            break;
        }
    }
    table.game_over.set();
    let board = *table.board.lock()?;
    println!(
        "referee: game over after {} moves, winner: {}",
        board.moves,
        match board.winner {
            0 => "nobody".to_string(),
            w => format!("player {w}"),
        }
    );
    if let Some(mut p) = player.take() {
        let status = p.wait().expect("wait for meet_reader");
        assert!(status.success(), "meet_reader failed: {status}");
    } else {
        // Give a player started by hand the time to read the result before this
        // program, the creator, unlinks the segment as its handle drops.
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}
