//! The hashing threads: each worker runs argon2 (RustCrypto's) in memory of its own, off
//! the async executor, and wipes that memory after every run.

use secrecy::zeroize::Zeroize;

use super::*;

impl Worker {
    pub(super) fn run(&mut self, job: Job) {
        match job {
            Job::Hash { password, reply } => {
                let _ = reply.send(hash_with_memory(
                    &password,
                    self.params,
                    &mut self.memory,
                    &self.work,
                ));
            }
            Job::Verify {
                password,
                stored,
                reply,
            } => {
                let result = match stored {
                    Some(stored) => verify_with_memory(
                        &password,
                        &stored,
                        self.params,
                        &mut self.memory,
                        &self.work,
                    ),
                    None => {
                        let dummy = self.dummy.clone();
                        verify_with_memory(
                            &password,
                            &dummy,
                            self.params,
                            &mut self.memory,
                            &self.work,
                        )
                        .map(|_| Verification::Mismatch)
                    }
                };
                let _ = reply.send(result);
            }
        }
    }
}

pub(super) fn hash_with_memory(
    password: &SecretString,
    params: HashParams,
    memory: &mut Vec<Block>,
    work: &WorkMeter,
) -> Result<HashedPassword, HashError> {
    let argon2_params = params.argon2_params()?;
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let mut out = [0u8; HASH_LEN];
    run_argon2(password, &salt, argon2_params, &mut out, memory, work)?;
    Ok(HashedPassword::from_phc(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost,
        params.t_cost,
        params.p_cost,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )))
}

pub(super) fn run_argon2(
    password: &SecretString,
    salt: &[u8],
    params: Params,
    out: &mut [u8],
    memory: &mut Vec<Block>,
    work: &WorkMeter,
) -> Result<(), HashError> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let memory = memory.get_mut(..blocks).ok_or(HashError::MalformedHash)?;
    work.record(&params);
    let hashed = argon2::Argon2::new(Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into_with_memory(
            password.expose_secret().as_bytes(),
            salt,
            out,
            &mut *memory,
        )
        .map_err(|_| HashError::MalformedHash);
    // What argon2 left in the blocks derives from the password: wiped before the memory
    // waits for the next job.
    memory.iter_mut().for_each(Zeroize::zeroize);
    hashed
}

/// The largest memory cost a stored hash may ask for (1 GiB), so that a tampered row
/// cannot make a worker allocate without bound.
pub(super) const MAX_STORED_M_COST: u32 = 1 << 20;

pub(super) fn verify_with_memory(
    password: &SecretString,
    stored: &HashedPassword,
    configured: HashParams,
    memory: &mut Vec<Block>,
    work: &WorkMeter,
) -> Result<Verification, HashError> {
    let parsed =
        argon2::PasswordHash::new(stored.as_phc()).map_err(|_| HashError::MalformedHash)?;
    if Algorithm::try_from(parsed.algorithm.as_str()) != Ok(Algorithm::Argon2id)
        || parsed.version.is_some_and(|v| v != 0x13)
    {
        return Err(HashError::MalformedHash);
    }
    let params = Params::try_from(&parsed).map_err(|_| HashError::MalformedHash)?;
    if params.m_cost() > MAX_STORED_M_COST {
        return Err(HashError::MalformedHash);
    }
    let expected = parsed.hash.ok_or(HashError::MalformedHash)?;
    let salt = parsed.salt.as_ref().ok_or(HashError::MalformedHash)?;
    let mut out = [0u8; 64];
    let out = out
        .get_mut(..expected.len())
        .ok_or(HashError::MalformedHash)?;
    run_argon2(password, salt, params.clone(), out, memory, work)?;
    if bool::from(out.ct_eq(expected.as_bytes())) {
        let same = params.m_cost() == configured.m_cost
            && params.t_cost() == configured.t_cost
            && params.p_cost() == configured.p_cost
            && expected.len() == HASH_LEN;
        Ok(Verification::Match { rehash: !same })
    } else {
        Ok(Verification::Mismatch)
    }
}
