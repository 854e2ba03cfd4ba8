-- 0004_kb_all_intents: a knowledge-base article for every one of the 77 Banking77 intents.
--
-- 0002 loaded articles for the intents the demo agent acts on; the gatherer's kb_search tools now
-- answer every other intent from the knowledge base, so each intent needs at least one article,
-- tagged with it. This replaces bank.load_kb() (bank.generate() calls it, so `conveyor seed`
-- loads these too) and reloads the articles of a database that is already generated.
--
-- Intent names are Banking77's (PolyAI, CC BY 4.0; see data/banking77/NOTICE.md). The articles
-- are the demo bank's own text. One VALUES row per article: slug, intent, title, body. An intent
-- is named as the pipeline names it: Banking77's "reverted_card_payment?" is reverted_card_payment
-- (learn/learn_examples.h).
--
-- A title says what an article is about better than any word of its body: the search vector now
-- weights the title's words above the body's (A and D), so that ts_rank puts the article whose
-- title matches a question first. The GIN index is rebuilt with the column.
alter table bank.kb_articles drop column tsv;
alter table bank.kb_articles add column tsv tsvector generated always as
    (setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'D')) stored;
create index kb_articles_tsv on bank.kb_articles using gin (tsv);

create or replace function bank.load_kb() returns integer
language plpgsql
as $fn$
begin
    delete from bank.kb_articles;
    insert into bank.kb_articles (slug, intent, title, body) values
    ('card-arrival', 'card_arrival', 'When will my new card arrive?',
     'We produce your new card within one working day of your order and send it by post. Delivery '
     'usually takes 3 to 5 working days within the EU and the UK and up to 10 working days '
     'elsewhere. In the app, Cards shows the status of the card (ordered, shipped), its expected '
     'arrival date and, once it has been shipped, the tracking number. If the card has not arrived '
     '3 working days after the expected date, report it as lost in the app: we cancel it and send '
     'a new one free of charge.'),
    ('card-delivery-estimate', 'card_delivery_estimate', 'How long does card delivery take?',
     'Standard delivery is free: 3 to 5 working days within the EU and the UK, up to 10 working '
     'days to other countries. Express delivery costs 4.99 EUR and arrives in 1 to 2 working days '
     'in most EU countries and the UK. The expected arrival date is shown in the app as soon as '
     'the card is ordered and is updated when it ships.'),
    ('activate-my-card', 'activate_my_card', 'Activating your new card',
     'When the card arrives, open the app, go to Cards, choose the new card and tap Activate, then '
     'enter the last four digits printed on it. The card works for online and contactless payments '
     'straight away. Your first payment in a shop may ask for your PIN, which you can see in the '
     'app under Cards, Show PIN.'),
    ('lost-or-stolen-card', 'lost_or_stolen_card', 'My card is lost or stolen',
     'Freeze the card in the app at once: Cards, choose the card, Freeze. A frozen card declines '
     'every payment and you can unfreeze it if you find it. If it is gone for good, choose Report '
     'lost or stolen: the card is cancelled for good and a replacement is ordered to your address. '
     'You are not liable for payments made after you reported the card. If you see payments you '
     'did not make, tell us from the transaction in the app so we can dispute them.'),
    ('request-refund', 'request_refund', 'Getting a refund for a purchase',
     'Refunds come from the merchant, so ask the merchant first. When they send it, the refund '
     'appears as a separate transaction on the card that paid, usually within 5 working days. If '
     'the goods never arrived or were faulty and the merchant does not help, open a dispute from '
     'the transaction in the app, with any receipts or messages. We answer disputes within 15 '
     'working days; card network rules can make it longer.'),
    ('refund-not-showing-up', 'Refund_not_showing_up', 'My refund is not showing',
     'A merchant can take up to 5 working days to send a refund after confirming it, and the card '
     'network up to 5 more to deliver it to us. Refunds are credited to the account of the card '
     'that made the payment, even if that card has since been replaced. If the merchant confirmed '
     'the refund more than 15 days ago and it is still missing, send us their confirmation from '
     'the payment in the app and we will chase it.'),
    ('pending-transfer', 'pending_transfer', 'Why is my transfer still pending?',
     'SEPA transfers in euro normally reach the recipient the next working day; transfers in other '
     'currencies or outside SEPA take 1 to 5 working days. Transfers made at weekends or on bank '
     'holidays start on the next working day. Some transfers are held for a security check for up '
     'to 2 working days and we may ask you about the payment in the app. The expected arrival '
     'time is shown on the transfer; if it has passed, contact us and we will trace it.'),
    ('transfer-not-received-by-recipient', 'transfer_not_received_by_recipient',
     'The recipient has not received my transfer',
     'First check the transfer in the app: if it is completed, it has left us and the recipient''s '
     'bank is processing it; some banks take an extra working day to credit it. Check that the '
     'IBAN and name match the recipient''s account. If the transfer completed more than 2 working '
     'days ago, ask us for the payment confirmation: it carries the reference the recipient''s bank '
     'needs to find the money.'),
    ('top-up-failed', 'top_up_failed', 'Why did my top-up fail?',
     'The most common reasons are that the bank of the card you topped up with declined it '
     '(funds, a daily limit, or a block on payments to e-money accounts), that the 3-D Secure '
     'check was not completed, that the card has expired, or that the top-up would take your '
     'balance over its limit. The reason is shown on the top-up in the app. A failed top-up is '
     'never charged; if your bank shows an amount on hold, it releases it within 7 working days.'),
    ('pending-top-up', 'pending_top_up', 'My top-up is pending',
     'Card top-ups usually arrive within minutes. A first top-up with a new card, or a large one, '
     'can be held for up to 24 hours for a security check. Bank transfer top-ups take 1 working '
     'day within SEPA and up to 3 from elsewhere, and must come from an account in your own name '
     'with the reference shown in the app.'),
    ('exchange-rate', 'exchange_rate', 'Which exchange rate do you use?',
     'We exchange at the interbank rate shown in the app, which follows the market during the '
     'week. At weekends, when markets are closed, a 0.5 percent markup applies to protect against '
     'price moves before they reopen. Exchanges within your plan''s monthly allowance carry no '
     'fee; above it a 0.5 percent fee applies. The app always shows the rate and any fee before '
     'you confirm.'),
    ('card-payment-wrong-exchange-rate', 'card_payment_wrong_exchange_rate',
     'The exchange rate on my card payment looks wrong',
     'A card payment in another currency is converted when the card network settles it, which can '
     'be a day or two after the payment, so the final rate may differ slightly from the one on the '
     'day you paid; while it is pending the app shows an estimate. If a shop or ATM offers to '
     'charge you in your own currency, decline: their conversion is usually much worse than ours.'),
    ('card-payment-not-recognised', 'card_payment_not_recognised', 'I do not recognise a card payment',
     'The name on a statement is often not the shop''s name: it can be the company behind it or '
     'a payment processor prefix such as SQ *, SumUp *, PAYPAL * or AMZN Mktp. Open the payment '
     'in the app to see the location and merchant details, and check with anyone who uses your '
     'card or saved it in an online shop. If you still do not recognise it, freeze the card and '
     'dispute the payment from the app; we will cancel the card and send you a new one.'),
    ('transaction-charged-twice', 'transaction_charged_twice', 'I was charged twice for one payment',
     'Often one of the two is a pending authorisation that the merchant has not released yet; it '
     'disappears by itself within 7 days. If both payments are completed, ask the merchant to '
     'refund the duplicate. If they do not within 15 days, dispute the second payment from the '
     'app with the merchant''s reply or receipt, and we will claim it back for you.'),
    ('pending-card-payment', 'pending_card_payment', 'Why is my card payment pending?',
     'A card payment stays pending until the merchant completes it, usually within 1 to 3 days; '
     'hotels, car hire and fuel stations can take up to 7 days. The amount is already reserved '
     'from your balance. If the merchant never completes it, the reservation is released after 7 '
     'days (up to 30 for hotels and car hire) and the money returns to your balance.'),
    ('declined-card-payment', 'declined_card_payment', 'Why was my card payment declined?',
     'The app shows the reason on the declined payment. The usual ones are an insufficient '
     'balance, a frozen card, a wrong PIN, a spending limit or a payment type you have switched '
     'off (online, contactless, magnetic stripe), and security checks on unusual payments. Fix the '
     'setting in Cards and try again; if the reason says we blocked it for security, confirm the '
     'payment in the app first.'),
    ('cash-withdrawal-charge', 'cash_withdrawal_charge', 'Do you charge for cash withdrawals?',
     'Withdrawals up to 200 EUR (or the equivalent) a month are free. Above that, each withdrawal '
     'costs 2 percent of the amount, at least 1 EUR, shown as a separate fee on your statement. '
     'Some ATM operators add their own charge, which the ATM must show before you accept; we do '
     'not receive it and cannot refund it.'),
    ('change-pin', 'change_pin', 'Changing your PIN',
     'You can see your PIN at any time in the app under Cards, Show PIN. To change it, use any ATM '
     'in the EU or the UK that offers PIN services: insert the card, enter the current PIN and '
     'choose Change PIN. The new PIN works immediately at that ATM and in shops after your next '
     'chip-and-PIN payment.'),
    ('age-limit', 'age_limit', 'How old do I need to be to open an account?',
     'You can open an account on your own from the age of 18. Customers aged 13 to 17 can have a '
     'junior account that a parent or guardian with an account of their own opens and manages '
     'from their app. We check the date of birth on your identity document when you sign up.'),
    ('apple-pay-google-pay', 'apple_pay_or_google_pay', 'Paying with Apple Pay or Google Pay',
     'Add your card to a phone wallet from the app: Cards, choose the card, Add to Apple Pay or '
     'Add to Google Pay, and follow the steps on screen. Virtual and physical cards can both be '
     'added. If the wallet refuses the card, check that the card is active and not frozen and '
     'that your phone''s software is up to date, then try again.'),
    ('atm-support', 'atm_support', 'Which cash machines can I use?',
     'Your card works at any ATM that shows the Visa or Mastercard sign, in every country we '
     'support. Choose to be charged in the local currency when the ATM asks. Some machines have '
     'their own withdrawal limit, which can be lower than the one in your app.'),
    ('automatic-top-up', 'automatic_top_up', 'Setting up automatic top-ups',
     'Auto top-up adds money from a saved card whenever your balance falls below an amount you '
     'choose. Turn it on in the app under Account, Auto top-up: pick the card, the threshold and '
     'the amount to add. You can change or switch it off at any time; each automatic top-up '
     'shows in your transactions like any other.'),
    ('balance-not-updated-bank-transfer', 'balance_not_updated_after_bank_transfer',
     'My balance has not updated after a bank transfer',
     'Incoming SEPA transfers usually arrive within one working day, faster payments in sterling '
     'within hours, and international transfers in 1 to 5 working days. Money sent on a weekend or '
     'holiday arrives on the next working day. If the sender''s bank shows the transfer as sent '
     'more than 2 working days ago, ask them for the payment reference and send it to us from the '
     'app so we can look for it.'),
    ('balance-not-updated-cheque-cash', 'balance_not_updated_after_cheque_or_cash_deposit',
     'My cash or cheque deposit is not in my balance',
     'Cash paid in at a partner shop normally reaches your balance within 30 minutes; cheques '
     'take up to 5 working days to clear. Keep the receipt until the money shows. If a cash '
     'deposit is missing after one working day, send us a photo of the receipt from the app and '
     'we will trace it with the partner.'),
    ('beneficiary-not-allowed', 'beneficiary_not_allowed', 'I cannot add a beneficiary',
     'A new payee can be refused when the name does not match the account holder, the IBAN or '
     'account number is not valid, the receiving bank is in a country we cannot send to, or our '
     'security checks stop it. Check the details with the person you are paying and try again. '
     'If the app still refuses, contact us with the payee''s bank and country.'),
    ('cancel-transfer', 'cancel_transfer', 'Can I cancel a transfer?',
     'A transfer that is still pending can be cancelled in the app: open it and tap Cancel '
     'transfer. Once it is completed the money has left us and we cannot take it back; ask the '
     'recipient to return it, or contact us and we will ask the receiving bank to recall it, which '
     'needs the recipient''s consent.'),
    ('card-about-to-expire', 'card_about_to_expire', 'My card is about to expire',
     'We send a new card automatically about 30 days before the expiry date printed on your '
     'current one, to the address in your profile. Check that your address is up to date in the '
     'app. Activate the new card when it arrives; the old one keeps working until its expiry '
     'date, and saved payments usually move to the new card by themselves.'),
    ('card-acceptance', 'card_acceptance', 'Where can I use my card?',
     'Your card is accepted wherever Visa or Mastercard is taken: in shops, online and at cash '
     'machines around the world. A few merchants, such as some car hire firms and petrol pumps, '
     'do not accept prepaid or debit cards; the merchant decides this, not us.'),
    ('card-linking', 'card_linking', 'Linking a card to your account',
     'To link a card you received by post, open the app, go to Cards, tap Link a card and enter '
     'the card number or scan it. To link a card from another bank for top-ups, go to Top up, Add '
     'a card and confirm it with 3-D Secure; we may place a small temporary charge to check it.'),
    ('card-not-working', 'card_not_working', 'My card is not working',
     'First check in the app that the card is active and not frozen, that it has not expired and '
     'that your balance covers the payment. Make sure online, contactless or magnetic stripe '
     'payments are switched on under Cards, Security if you need them. If the chip is damaged, '
     'order a replacement from the app free of charge.'),
    ('card-payment-fee', 'card_payment_fee_charged', 'Why was I charged a fee for a card payment?',
     'Card payments in your account''s currency are free. Payments in another currency use our '
     'exchange rate, with a fee only above your plan''s monthly allowance or at weekends. Some '
     'merchants add their own surcharge, which appears in the amount they charge. The app shows '
     'any fee of ours as a separate line under the payment.'),
    ('card-swallowed', 'card_swallowed', 'A cash machine kept my card',
     'If an ATM keeps your card, freeze it in the app at once. Banks usually destroy retained '
     'cards for security, so we cannot get it back: order a replacement in the app under Cards. '
     'If the machine took the card during a withdrawal and you did not get the cash, tell us from '
     'the transaction so we can claim the money back.'),
    ('cash-withdrawal-not-recognised', 'cash_withdrawal_not_recognised',
     'I do not recognise a cash withdrawal',
     'Check the date, place and amount of the withdrawal in the app, and whether someone you '
     'trust has your card. If you did not make it, freeze the card straight away and report the '
     'withdrawal from the transaction. We will cancel the card, send a new one and investigate '
     'the withdrawal with the ATM operator.'),
    ('compromised-card', 'compromised_card', 'I think my card details have been stolen',
     'If you think someone else knows your card details, freeze the card in the app and then '
     'choose Report compromised: we cancel it and send a new card with a new number. Check your '
     'recent payments and dispute any you did not make. You are not liable for payments made '
     'after you reported the card.'),
    ('contactless-not-working', 'contactless_not_working', 'Contactless payments do not work',
     'A new physical card needs one chip-and-PIN payment before contactless works. Check that '
     'contactless is switched on in the app under Cards, Security. For security, a terminal '
     'sometimes asks for your PIN after several contactless payments in a row; insert the card '
     'and enter it, and contactless will work again.'),
    ('country-support', 'country_support', 'Which countries do you support?',
     'You can open an account if you live in a country of the European Economic Area, the UK or '
     'Switzerland and have an address there. Your card works abroad in every country that accepts '
     'Visa or Mastercard, apart from a few under international sanctions.'),
    ('declined-cash-withdrawal', 'declined_cash_withdrawal', 'My cash withdrawal was declined',
     'A withdrawal can be declined by a low balance, a frozen card, a wrong PIN, your ATM limit in '
     'the app or the machine''s own limit. The app shows the reason on the declined transaction. '
     'Check the setting in Cards and try again, or try another machine with a smaller amount.'),
    ('declined-transfer', 'declined_transfer', 'Why was my transfer declined?',
     'A transfer can be declined when your balance is too low, the recipient''s details are not '
     'valid, it is over your transfer limit, or our security checks stop it. The reason is shown '
     'on the transfer in the app. No money leaves your account for a declined transfer.'),
    ('direct-debit-not-recognised', 'direct_debit_payment_not_recognised',
     'I do not recognise a direct debit',
     'A direct debit is taken by a company you gave your account details to, such as a phone, '
     'energy or gym provider; the name shown is sometimes their payment company. Open the direct '
     'debit in the app to see who set it up. If you did not agree to it, cancel the mandate in '
     'the app and claim the payment back: unauthorised direct debits are refunded.'),
    ('disposable-card-limits', 'disposable_card_limits', 'Limits on disposable virtual cards',
     'A disposable virtual card can be used for one payment; after it, a new card number is made '
     'for you. You can hold up to 5 disposable cards at a time. The same spending limits apply '
     'as to your other cards; disposable cards cannot be used for cash withdrawals or recurring '
     'payments.'),
    ('edit-personal-details', 'edit_personal_details', 'Changing your personal details',
     'You can change your address, email and phone number in the app under Profile. A change of '
     'name or date of birth needs a new identity document: upload it under Profile, Legal name '
     'and we will update your account within one working day.'),
    ('exchange-charge', 'exchange_charge', 'Do you charge for exchanging currency?',
     'Exchanges within your plan''s monthly allowance are free on weekdays. Above the allowance a '
     '0.5 percent fee applies, and at weekends a further 0.5 percent markup applies to every '
     'exchange. The app shows the rate and any fee before you confirm.'),
    ('exchange-via-app', 'exchange_via_app', 'Exchanging money in the app',
     'To exchange, open the app, tap Exchange, choose the currencies and the amount, check the '
     'rate and any fee, and confirm. The money is in your other currency account at once. You '
     'can hold and exchange more than 25 currencies.'),
    ('extra-charge-on-statement', 'extra_charge_on_statement',
     'There is an extra charge on my statement',
     'An extra charge can be a fee of ours (a withdrawal over your free allowance, an exchange fee, '
     'your plan''s monthly fee, express card delivery) or a charge the merchant added. Open the '
     'transaction in the app to see what it is. If you think it is wrong, contact us from the '
     'transaction.'),
    ('failed-transfer', 'failed_transfer', 'My transfer failed',
     'A transfer fails when the receiving bank rejects it, usually because the account details '
     'are wrong or the account is closed. The money comes back to your balance, normally within 2 '
     'working days and sometimes up to 10 for international transfers. Check the details with the '
     'recipient before you send it again.'),
    ('fiat-currency-support', 'fiat_currency_support', 'Which currencies can I hold?',
     'You can hold, exchange and send more than 25 currencies, including EUR, GBP, USD, CHF, PLN, '
     'SEK, NOK, DKK and JPY. Open a new currency account in the app under Accounts, Add currency. '
     'The list of currencies is in the app and may change.'),
    ('get-disposable-virtual-card', 'get_disposable_virtual_card', 'Getting a disposable virtual card',
     'Open the app, go to Cards, tap Add card and choose Disposable virtual card. It is ready at '
     'once and gets a new number after every payment, which keeps your details safe on sites you '
     'do not know well.'),
    ('get-physical-card', 'get_physical_card', 'Getting your physical card',
     'Your first physical card is included with your account. Order it in the app under Cards, '
     'Order physical card, check your address and choose standard (free) or express delivery. '
     'Activate it in the app when it arrives.'),
    ('getting-spare-card', 'getting_spare_card', 'Getting an extra card',
     'You can have up to 3 physical cards on your account, for example a spare one for travel. '
     'Order one in the app under Cards, Add card; an additional physical card costs 5 EUR, '
     'virtual cards are free.'),
    ('getting-virtual-card', 'getting_virtual_card', 'Getting a virtual card',
     'A virtual card is free and ready in seconds. Open the app, go to Cards, tap Add card and '
     'choose Virtual card. Use it for online payments or add it to Apple Pay or Google Pay.'),
    ('lost-or-stolen-phone', 'lost_or_stolen_phone', 'My phone was lost or stolen',
     'Log in at our website or from another phone and freeze your cards, or contact us and we will '
     'block access to your account. Your app is protected by your passcode, so someone with your '
     'phone cannot open it without it. When you have a new phone, install the app and log in: '
     'your old device is signed out.'),
    ('order-physical-card', 'order_physical_card', 'Ordering a physical card',
     'To order a physical card, go to Cards in the app and tap Order physical card. Confirm your '
     'delivery address and choose standard delivery, which is free, or express delivery. You can '
     'follow the order in the app.'),
    ('passcode-forgotten', 'passcode_forgotten', 'I forgot my passcode',
     'On the login screen tap Forgot passcode. We send a code to your phone number and email and '
     'may ask you for a selfie to confirm it is you; then you choose a new passcode. Nobody from '
     'the bank will ever ask you for your passcode.'),
    ('pending-cash-withdrawal', 'pending_cash_withdrawal', 'My cash withdrawal is pending',
     'A withdrawal shows as pending until the ATM operator confirms it, usually within 1 to 3 '
     'working days. The amount is reserved from your balance meanwhile. If the machine did not '
     'give you the cash, the reservation is released when the operator reports it, at most after '
     '7 days.'),
    ('pin-blocked', 'pin_blocked', 'My PIN is blocked',
     'After three wrong PIN entries the PIN is blocked. Check your PIN in the app under Cards, '
     'Show PIN, then unblock it at any ATM that offers PIN services: insert the card, enter the '
     'right PIN and choose Unblock PIN. Contactless and online payments keep working meanwhile.'),
    ('receiving-money', 'receiving_money', 'Receiving money into your account',
     'Share the IBAN and BIC shown in the app under Account details. Friends who bank with us can '
     'also pay you with your phone number. Euro transfers from SEPA banks usually arrive within '
     'one working day; you get a notification when the money is in.'),
    ('reverted-card-payment', 'reverted_card_payment', 'A card payment was reverted',
     'A reverted payment is one the merchant cancelled before completing it, or one we returned '
     'because it was not completed in time. The money goes back to your balance. If you still '
     'owe the merchant, they may charge the card again, so check with them.'),
    ('supported-cards-and-currencies', 'supported_cards_and_currencies',
     'Which cards and currencies can I top up with?',
     'You can top up with Visa or Mastercard debit and credit cards issued in the EEA, the UK or '
     'Switzerland, and by bank transfer. Card top-ups in EUR, GBP, USD and CHF go to the account of '
     'that currency; other currencies are exchanged at our rate.'),
    ('terminate-account', 'terminate_account', 'Closing your account',
     'You can close your account in the app under Profile, Close account. Move your money out '
     'first, and cancel any standing orders and direct debits. We close the account once the '
     'balance is zero and no payment is pending. Closing is free, and you can download your '
     'statements before you go.'),
    ('top-up-bank-transfer-charge', 'top_up_by_bank_transfer_charge',
     'Is there a charge for topping up by bank transfer?',
     'Topping up by bank transfer is free on our side. Your own bank may charge for sending the '
     'transfer, especially from outside SEPA or in another currency; check with them before you '
     'send it.'),
    ('top-up-card-charge', 'top_up_by_card_charge', 'Is there a charge for topping up by card?',
     'Top-ups with a card issued in the EEA are free. Top-ups with cards issued elsewhere, and '
     'with business or some credit cards, carry a fee of up to 1.5 percent, which the app shows '
     'before you confirm.'),
    ('top-up-cash-or-cheque', 'top_up_by_cash_or_cheque', 'Can I top up with cash or a cheque?',
     'You can pay in cash at partner shops shown on the map in the app under Top up, Cash: show the '
     'barcode in the app at the till. A cash top-up costs 1 percent of the amount. We do not '
     'accept cheques for top-ups.'),
    ('top-up-limits', 'top_up_limits', 'Are there limits on top-ups?',
     'You can top up as often as you like. A single card top-up can be up to 10,000 EUR, and up '
     'to 30,000 EUR in a month; bank transfer top-ups have no limit of ours. New accounts may '
     'have lower limits until your identity is verified. Your limits are shown in the app.'),
    ('top-up-reverted', 'top_up_reverted', 'My top-up was reverted',
     'A top-up is reverted when the card''s bank cancels the payment after it was made, or when our '
     'checks could not confirm the card is yours. The money goes back to the card, usually within '
     '5 working days. Try again with a card in your own name, or top up by bank transfer.'),
    ('topping-up-by-card', 'topping_up_by_card', 'Topping up with a card',
     'Open the app, tap Top up, choose the card or add a new one, enter the amount and confirm. '
     'Your bank may ask you to approve it with 3-D Secure. Card top-ups usually arrive in your '
     'balance within minutes.'),
    ('transfer-fee', 'transfer_fee_charged', 'Why was I charged for a transfer?',
     'Transfers in euro within SEPA and transfers between customers are free. Transfers in other '
     'currencies or outside SEPA carry a fee shown before you confirm, and the recipient''s bank or '
     'an intermediary bank may deduct its own charge from the amount sent.'),
    ('transfer-into-account', 'transfer_into_account', 'Transferring money into your account',
     'To add money by bank transfer, send it from an account in your own name to the IBAN shown in '
     'the app under Account details, with the reference shown there. SEPA transfers usually arrive '
     'within one working day; international ones in 1 to 5.'),
    ('transfer-timing', 'transfer_timing', 'How long does a transfer take?',
     'Transfers between customers are instant. SEPA transfers in euro normally arrive the next '
     'working day, or within seconds when both banks support instant payments. Transfers in other '
     'currencies take 1 to 5 working days. The expected arrival time is shown before you confirm.'),
    ('unable-to-verify-identity', 'unable_to_verify_identity', 'I cannot verify my identity',
     'Verification fails most often because the photo is blurry or cut off, there is glare on the '
     'document, the document has expired, or the selfie does not match. Use good light, place the '
     'whole document on a dark surface and try again. If it still fails, contact us and we will '
     'check your documents by hand.'),
    ('verify-my-identity', 'verify_my_identity', 'Verifying your identity',
     'To verify your identity, open the app, go to Profile, Verify identity, take a photo of a '
     'valid passport, identity card or driving licence, and take a short selfie. Most checks are '
     'done within minutes; some take up to one working day.'),
    ('verify-source-of-funds', 'verify_source_of_funds', 'Why do you ask where my money comes from?',
     'The law requires us to understand where larger amounts of money come from. We may ask for a '
     'payslip, a bank statement, a sale contract or a similar document. Upload it in the app when '
     'asked; we review it within 2 working days and your account keeps working meanwhile.'),
    ('verify-top-up', 'verify_top_up', 'Verifying a top-up card',
     'When you add a card for top-ups we may ask you to verify it: we place a small temporary '
     'charge on it with a code in the description. Find the code in your card''s statement or '
     'banking app and enter it in our app. The charge is released within a few days.'),
    ('virtual-card-not-working', 'virtual_card_not_working', 'My virtual card does not work',
     'Check in the app that the virtual card is active and not frozen, and that online payments '
     'are switched on. Enter the card number, expiry date and security code exactly as shown in '
     'the app. Some merchants do not accept virtual cards, for example for car hire or hotel '
     'deposits; use your physical card there.'),
    ('visa-or-mastercard', 'visa_or_mastercard', 'Is my card Visa or Mastercard?',
     'Our cards are issued on Visa or Mastercard depending on your country; the logo is on the card '
     'and on its picture in the app. Both are accepted in the same places worldwide, and fees and '
     'limits are the same for both.'),
    ('why-verify-identity', 'why_verify_identity', 'Why do I need to verify my identity?',
     'As a regulated bank we must confirm who our customers are before they can use their account '
     'fully, to protect you and to prevent fraud and money laundering. Your documents are stored '
     'securely and used only for this.'),
    ('wrong-amount-of-cash', 'wrong_amount_of_cash_received', 'The ATM gave me the wrong amount of cash',
     'If a cash machine gave you less than you asked for, or no cash at all, report it from the '
     'withdrawal in the app with the amount you received. We claim the difference from the ATM '
     'operator, which usually takes up to 15 working days, and return it to your balance.'),
    ('wrong-exchange-rate-cash-withdrawal', 'wrong_exchange_rate_for_cash_withdrawal',
     'The exchange rate on my cash withdrawal looks wrong',
     'A withdrawal in another currency is converted at our rate when the ATM operator settles it. '
     'If the ATM offered to charge you in your own currency and you accepted, the operator''s rate '
     'was used, which is usually worse: always choose the local currency. Withdrawals above your '
     'free allowance also carry a 2 percent fee.');
    return (select count(*)::integer from bank.kb_articles);
end
$fn$;

select bank.load_kb();
analyze bank.kb_articles;
