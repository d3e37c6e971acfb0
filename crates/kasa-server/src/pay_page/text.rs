//! The approval page's words in Korean and English, in one table, and the choice between
//! them by `Accept-Language`: Korean when `ko` ranks first, English otherwise. A string may
//! hold one `{}` that the page fills in (a number, an amount, a time); the page escapes the
//! result, so a string here is plain text, never markup.

/// The language of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    /// 한국어.
    Ko,
    /// English.
    En,
}

impl Lang {
    /// The language for an `Accept-Language` header: Korean when a `ko` range has the
    /// highest weight (the first such range wins a tie, as browsers list them in order),
    /// English for anything else, including no header.
    pub(crate) fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best: Option<(&str, u16)> = None;
        // A header is short; a long one is someone else's problem, not a loop of ours.
        for range in header.unwrap_or("").split(',').take(32) {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or("").trim();
            if tag.is_empty() {
                continue;
            }
            let weight =
                parts.filter_map(|p| p.trim().strip_prefix("q=")).next().map_or(Some(1000), parse_weight).unwrap_or(0);
            if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
                best = Some((tag, weight));
            }
        }
        let primary = best.map(|(tag, _)| tag.split('-').next().unwrap_or(""));
        if primary.is_some_and(|p| p.eq_ignore_ascii_case("ko")) {
            Lang::Ko
        } else {
            Lang::En
        }
    }

    /// The value of `<html lang>` and `Content-Language`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }
}

/// A weight `0`, `1`, `0.8`, `0.85`... as thousandths; `None` if malformed.
fn parse_weight(q: &str) -> Option<u16> {
    let (whole, fraction) = q.trim().split_once('.').unwrap_or((q.trim(), ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

macro_rules! strings {
    ($($key:ident: $ko:literal, $en:literal;)*) => {
        /// A string of the page.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum S {
            $(#[doc = $en] $key,)*
        }

        impl S {
            /// Every string, for the test that both languages fill each one in.
            #[cfg(test)]
            pub(crate) const ALL: &'static [S] = &[$(S::$key,)*];

            /// The string in `lang`.
            pub(crate) fn get(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((S::$key, Lang::Ko) => $ko, (S::$key, Lang::En) => $en,)*
                }
            }

            /// The string in `lang` with its `{}` replaced by `value`.
            pub(crate) fn with(self, lang: Lang, value: &str) -> String {
                self.get(lang).replacen("{}", value, 1)
            }
        }
    };
}

strings! {
    Title: "Kasa 결제", "Kasa payment";
    Merchant: "가맹점", "Merchant";
    Store: "매장", "Store";
    Item: "상품", "Item";
    Amount: "금액", "Amount";
    Until: "{} (KST)까지 승인할 수 있습니다.", "Approve by {} (KST).";
    WaitingHeading: "결제 요청", "Payment request";
    LogInIntro: "Kasa 지갑에 로그인해 결제하세요.", "Log in to your Kasa wallet to pay.";
    Phone: "휴대폰 번호", "Phone number";
    Pin: "PIN (숫자 6자리)", "PIN (6 digits)";
    LogIn: "로그인", "Log in";
    LoggedInAs: "{} 님으로 로그인했습니다.", "Logged in as {}.";
    PinIntro: "PIN 없이 결제할 수 있는 금액을 넘습니다. PIN을 입력하세요.", "This is more than you can pay without the PIN: enter your PIN.";
    Pay: "{} 결제하기", "Pay {}";
    Decline: "결제 거절", "Decline";
    LogOut: "로그아웃", "Log out";
    PaidHeading: "결제 완료", "Payment complete";
    PaidBody: "결제했습니다.", "You paid.";
    ApprovedHeading: "결제 승인", "Payment approved";
    ApprovedBody: "지갑에서 금액을 잡아 두었습니다. 가맹점이 결제를 확정하면 돈이 나갑니다.", "The amount is reserved in your wallet; the money goes when the merchant completes the payment.";
    DeclinedHeading: "결제 거절", "Payment declined";
    DeclinedBody: "결제를 거절했습니다. 돈은 나가지 않았습니다.", "You declined the payment. Nothing was paid.";
    ExpiredHeading: "결제 시간 만료", "Payment expired";
    ExpiredBody: "승인 시간이 지났습니다. 돈은 나가지 않았습니다. 가맹점에서 다시 결제해 주세요.", "The time to approve it is over. Nothing was paid; start again at the merchant.";
    CanceledHeading: "결제 취소", "Payment canceled";
    CanceledBody: "취소된 결제입니다. 돈은 나가지 않았습니다.", "The payment was canceled. Nothing was paid.";
    AnsweredHeading: "처리된 결제", "Payment answered";
    AnsweredBody: "이 결제는 이미 처리되었습니다. 결제한 계정으로 로그인하면 결과를 볼 수 있습니다.", "This payment was answered already. Log in as the payer to see how.";
    NotFoundHeading: "결제를 찾을 수 없습니다", "Payment not found";
    NotFoundBody: "링크를 확인하거나 가맹점에 새 링크를 요청하세요.", "Check the link, or ask the merchant for a new one.";
    ErrorHeading: "처리하지 못했습니다", "Something went wrong";
    BackToMerchant: "가맹점으로 돌아가기", "Back to the merchant";
    InvalidCredentials: "휴대폰 번호와 PIN을 확인하세요. PIN을 5번 연속 틀리면 30분 동안 PIN을 쓸 수 없습니다.", "Check the phone number and the PIN. Five wrong PINs in a row lock PIN use for 30 minutes.";
    RateLimited: "시도가 너무 많습니다. {}초 뒤에 다시 시도하세요.", "Too many tries. Try again in {} seconds.";
    SessionEnded: "로그인이 끝났습니다. 다시 로그인하세요.", "Your login ended. Log in again.";
    LoggedOut: "로그아웃했습니다.", "You logged out.";
    WrongPin: "PIN이 틀렸습니다. {}번 더 틀리면 30분 동안 PIN을 쓸 수 없습니다.", "Wrong PIN. {} more wrong PINs lock PIN use for 30 minutes.";
    PinLocked: "PIN을 5번 틀려 30분 동안 PIN을 쓸 수 없습니다. 앱에서 PIN을 재설정하면 바로 풀립니다.", "PIN use is locked for 30 minutes after five wrong PINs. Reset the PIN in the app to unlock it now.";
    PinRequired: "PIN을 입력하세요.", "Enter your PIN.";
    InsufficientFunds: "지갑 잔액이 모자랍니다. 충전한 뒤 다시 시도하세요.", "Your wallet does not hold enough. Top it up and try again.";
    LimitExceeded: "하루 결제 한도를 넘습니다. 오늘 남은 한도는 {}입니다.", "This is over your daily limit: {} is left today.";
    MerchantNotActive: "가맹점이 지금은 결제를 받지 않습니다.", "The merchant is not taking payments now.";
    AlreadyAnswered: "이미 처리된 결제입니다.", "This payment was answered already.";
    Failed: "요청을 처리하지 못했습니다. 잠시 뒤에 다시 시도하세요.", "The request could not be handled. Try again in a moment.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_only_when_ko_ranks_first() {
        for (header, want) in [
            (Some("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"), Lang::Ko),
            (Some("ko"), Lang::Ko),
            (Some("KO-kr"), Lang::Ko),
            (Some("en-US,en;q=0.9,ko;q=0.8"), Lang::En),
            (Some("en;q=0.5, ko;q=0.8"), Lang::Ko),
            (Some("ko;q=0, en;q=0.1"), Lang::En),
            (Some("ko;q=0.8, en;q=0.8"), Lang::Ko),
            (Some("kok, ko;q=0.5"), Lang::En),
            (Some("*"), Lang::En),
            (Some("ko;q=2"), Lang::En),
            (Some(""), Lang::En),
            (None, Lang::En),
        ] {
            assert_eq!(Lang::from_accept_language(header), want, "{header:?}");
        }
    }

    #[test]
    fn every_string_in_both_languages() {
        for s in S::ALL {
            let (ko, en) = (s.get(Lang::Ko), s.get(Lang::En));
            assert!(!ko.is_empty() && !en.is_empty() && ko != en, "{s:?}");
            assert_eq!(ko.matches("{}").count(), en.matches("{}").count(), "{s:?}: the same placeholders");
            assert!(!ko.contains('<') && !en.contains('<'), "{s:?}: plain text");
        }
        assert_eq!(S::WrongPin.with(Lang::En, "3"), "Wrong PIN. 3 more wrong PINs lock PIN use for 30 minutes.");
    }
}
