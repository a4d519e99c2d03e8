//! Did-you-mean hints: the one rule every message in Stampede uses to name the likely intent
//! of a mistyped word (a field, a flow, a template function, an expression operator, ...).

/// The candidate closest to `word`, if one is close enough to be a likely typo.
///
/// Case is ignored, and distance is the Damerau-Levenshtein edit count (insertions,
/// deletions, substitutions and adjacent transpositions, so `stauts` is one edit from
/// `status`). A candidate is close enough within 2 edits, or within a third of the longer
/// word's length when that is more. Among equally close candidates the first one wins.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let word_length = word.chars().count();
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let distance = strsim::damerau_levenshtein(&word_lower, &candidate.to_lowercase());
            let limit = (candidate.chars().count().max(word_length) / 3).max(2);
            (distance <= limit).then_some((distance, candidate))
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// ` (did you mean "x"?)` for the closest candidate, or nothing; ready to append to a message.
pub fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|best| format!(" (did you mean {best:?}?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_typos_but_not_noise() {
        assert_eq!(did_you_mean("stauts", ["status", "body"]), Some("status"));
        assert_eq!(did_you_mean("STATUS", ["status"]), Some("status"));
        assert_eq!(did_you_mean("bdy", ["body"]), Some("body"));
        assert_eq!(
            did_you_mean("sesion", ["session", "token"]),
            Some("session")
        );
        assert_eq!(did_you_mean("zebra", ["status", "body"]), None);
        assert_eq!(did_you_mean("zzz", ["session", "token"]), None);
    }

    #[test]
    fn long_words_allow_a_third_of_their_length() {
        assert_eq!(
            did_you_mean("gracefulstp", ["gracefulStop"]),
            Some("gracefulStop")
        );
        // 3 edits in a 9-letter word, but not 4.
        assert_eq!(did_you_mean("abcdefghi", ["abcxyzghi"]), Some("abcxyzghi"));
        assert_eq!(did_you_mean("abcdefghi", ["abwxyzghi"]), None);
    }

    #[test]
    fn the_closest_and_then_the_first_candidate_wins() {
        assert_eq!(did_you_mean("dat", ["env", "data"]), Some("data"));
        assert_eq!(did_you_mean("ab", ["ax", "xb"]), Some("ax"));
        assert_eq!(did_you_mean("env", ["data", "ENV"]), Some("ENV"));
    }

    #[test]
    fn suggestion_is_a_parenthesized_hint_or_nothing() {
        assert_eq!(
            suggestion("logn", ["login", "logout"]),
            " (did you mean \"login\"?)"
        );
        assert_eq!(suggestion("zzz", ["login"]), "");
    }
}
