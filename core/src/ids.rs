//! Typed ids: a `UserId` can never be passed where a `ClickId` is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id (UUID v7), so inserts append to the index.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An API key.
    ApiKeyId
);
id_type!(
    /// An outgoing e-mail.
    EmailId
);
id_type!(
    /// A user of the platform (referrer or referred user).
    UserId
);
id_type!(
    /// A recorded click on a referral link.
    ClickId
);
id_type!(
    /// One grant of wallet credit.
    CreditGrantId
);
id_type!(
    /// One spend of wallet credit.
    CreditSpendId
);
id_type!(
    /// A purchase the platform reported.
    PurchaseId
);
id_type!(
    /// A referrer's commission on one purchase.
    CommissionId
);
id_type!(
    /// A refund of a purchase.
    RefundId
);
id_type!(
    /// A withdrawal of a Partner's referral balance.
    PayoutId
);
