//! The other program of the pair (see `writer.rs`): a player that opens the referee's
//! named segment and sends its moves. It defines `Table`, `Board` and `Move` itself —
//! same fields, same `#[repr(C)]`, same `#[type_name]`s — and `open` checks that the
//! two definitions agree (name and layout) before it hands out the table.
//!
//! ```sh
//! cargo run --example meet_reader   # with `cargo run --example meet_writer` elsewhere
//! ```

use std::time::Duration;

use shmkit::{Event, Mutex, Pod, Queue, Shared, ShmSafe, Zeroable};

const NAME: &str = "shmkit-example-meet";
const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Move {
    player: u32,
    cell: u32,
}

#[derive(Clone, Copy, Debug, Pod, Zeroable, ShmSafe)]
#[repr(C)]
#[type_name("meet.Board")]
struct Board {
    cells: [u32; 9],
    moves: u32,
    winner: u32,
    refused: u32,
}

#[derive(ShmSafe, Zeroable)]
#[repr(C)]
#[type_name("meet.Table")]
struct Table {
    moves: Queue<Move, 16>,
    board: Mutex<Board>,
    game_over: Event,
}

fn main() -> Result<(), shmkit::Error> {
    // Waits up to a minute for the referee to create the segment.
    let table = Shared::<Table>::open_timeout(NAME, PATIENCE)?;
    println!("player: opened /dev/shm/{NAME}");
    // Both players' moves, from this one program: player 1 wins on the diagonal
    // 2-4-6 with its third move (the referee reads no further).
    let script = [(1, 4), (2, 0), (1, 2), (2, 8), (1, 6), (2, 3), (1, 5)];
    for (player, cell) in script {
        if table.game_over.is_set() {
            break;
        }
        table.moves.put(Move { player, cell })?;
    }
    if !table.game_over.wait_timeout(PATIENCE) {
        return Err(shmkit::Error::Timeout);
    }
    let board = *table.board.lock()?;
    let row = |r: usize| -> String {
        board.cells[r * 3..r * 3 + 3]
            .iter()
            .map(|&c| [".", "X", "O"][c.min(2) as usize])
            .collect()
    };
    println!(
        "player: the board as the referee left it:\n  {}\n  {}\n  {}",
        row(0),
        row(1),
        row(2)
    );
    println!(
        "player: winner {}, {} moves, {} refused",
        board.winner, board.moves, board.refused
    );
    Ok(())
}
