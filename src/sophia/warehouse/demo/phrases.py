"""The rest of a sales call, in many words: small talk, agendas, discovery, demo narration, check-ins,
renewals, pricing and next steps. Placeholders as in objections.py, plus {rep_first},
{contact_first}, {weekday}, {product}, {annual}, {city}."""

from __future__ import annotations

GREETINGS = (
    "Hi {contact_first}, thanks for making the time today.",
    "Good morning {contact_first}, can you hear me okay?",
    "Hey {contact_first}, it's {rep_first}. Did I catch you at a good time?",
    "Thanks for jumping on, {contact_first}. How's your week going?",
    "Hi {contact_first}, great to connect again.",
    "Afternoon {contact_first}! Appreciate you squeezing this in.",
)
GREETING_REPLIES = (
    "Hi {rep_first}, yes, all good on my end.",
    "Busy week, but glad we could do this.",
    "Hey, sorry I'm a minute late, back-to-back meetings.",
    "Doing well, thanks. It's been a hectic move-in season.",
    "Good, thanks. I've got about forty minutes.",
    "Hi! Yes, I can hear you fine.",
)
SMALL_TALK = (
    "How's the weather out in {city}? I heard you got hit with a storm.",
    "Did you make it to the NAA conference this year?",
    "I saw you just opened a new community, congratulations on that.",
    "How did your team's occupancy hold up this quarter?",
    "Are you all back in the office, or still mostly remote?",
    "I hope the turn season isn't wearing everyone out.",
    "Did you have a good weekend?",
    "I noticed {company} was in the news for that renovation project, that looked great.",
)
SMALL_TALK_REPLIES = (
    "Ha, yes, we survived. A few leaks, but nothing major.",
    "I did, it was packed. Everyone was talking about AI, of course.",
    "Thanks! Lease-up is going better than we expected.",
    "Mostly hybrid now. The onsite teams never left, obviously.",
    "It's been a lot, but we're through the worst of it.",
    "It was nice, thanks. Kids had a soccer tournament.",
    "Occupancy's holding around ninety-five, so no complaints.",
)
AGENDA = {
    "discovery": (
        "My goal today is to understand how leasing and maintenance work at {company} today, and see if there's a fit.",
        "I'd love to learn about your portfolio and your biggest headaches, then share a bit about us if it's relevant.",
        "Today is mostly questions from me: how your team works, what tools you use, and what you'd want to change.",
    ),
    "demo": (
        "Today I'll show you the platform live, using a setup that looks like one of your properties.",
        "I'll walk through the leasing assistant first, then maintenance, and leave time for questions.",
        "Based on our last call, I've tailored the demo to your {pms} workflow.",
    ),
    "negotiation": (
        "I sent over the proposal on {weekday}; I'd like to walk through it and hear what needs to change.",
        "Today I want to get aligned on the commercial terms and the rollout plan.",
        "Let's go through the pricing and the contract questions your team raised.",
    ),
    "check_in": (
        "This is just our regular check-in: how things are going, usage, and anything we can help with.",
        "I pulled your usage numbers for the last quarter and wanted to go through them with you.",
        "Quick health check today, and I want to hear about any open support tickets.",
    ),
    "renewal": (
        "Your renewal is coming up, so I wanted to review the past year and talk about the next one.",
        "Today I'd like to go over the value you've seen and the renewal terms.",
        "Let's talk about the renewal and whether the current plan still fits your portfolio.",
    ),
}
DISCOVERY_QUESTIONS = (
    "How many units are you managing today, and how is that split across properties?",
    "Walk me through what happens when a prospect calls after hours.",
    "Which property management system are you on?",
    "How does your team handle maintenance requests right now?",
    "What does your lead-to-lease conversion look like these days?",
    "Who else is involved in a decision like this?",
    "What made you take this call now?",
    "How many leasing agents do you have per property, roughly?",
    "Are you using any AI tools today, even informally?",
    "How do residents pay rent today, and how much of it is online?",
    "What reports does your leadership look at every week?",
    "How quickly does your team respond to new leads today?",
    "What would a great outcome look like twelve months from now?",
    "How are you growing: acquisitions, new development, third-party management?",
)
DISCOVERY_ANSWERS = (
    "We've got about {units} units across {properties} properties, mostly garden-style.",
    "Everything runs on {pms}: leasing, accounting, work orders, all of it.",
    "After hours, calls go to voicemail and we try to call back the next morning. We lose a lot of those.",
    "Maintenance requests come in through the portal, phone and email, and the supervisors triage them by hand.",
    "Conversion is okay on tours, but we lose people between the first inquiry and the tour.",
    "I'd make the recommendation, but our COO and the regional VPs sign off.",
    "We've grown a lot this year and the onsite teams can't keep up with lead volume.",
    "Usually two agents per property, fewer at the smaller sites.",
    "A few agents use ChatGPT to write emails, but nothing official.",
    "Most residents pay online through {pms}, but some older communities still take checks.",
    "Leadership looks at occupancy, leads, tours and delinquency every Monday.",
    "Honestly, response times are all over the place: minutes at some sites, a day at others.",
    "I'd want every lead answered within five minutes and our agents spending time on tours, not phone tag.",
    "Mostly acquisitions; we took over two portfolios last year.",
    "Our {pms} setup is pretty customized, we've been on it for almost ten years.",
    "Turnover on the onsite teams is our real problem; training new agents takes months.",
)
DEMO_NARRATION = (
    "Here's the leasing assistant answering an after-hours inquiry, pulling live availability from {pms}.",
    "You can see it booked a self-guided tour and created the guest card automatically.",
    "This is the maintenance inbox: the AI triages the request, asks for a photo and flags emergencies.",
    "Here's the dashboard your regional managers would see: response times, tours booked, conversion by property.",
    "Every conversation is logged here, and your team can jump in at any point.",
    "This is where you set what the assistant is allowed to say: specials, pet policy, screening criteria.",
    "Watch what happens when the prospect asks for a human: it hands off with the full conversation.",
    "On the payments side, residents get reminders and can set up autopay in two taps.",
    "The renewal module flags residents likely to move out sixty days before lease end.",
    "Here's how the work order lands in {pms} with the category and priority already filled in.",
    "This report shows after-hours leads converted over the last month for a property like yours.",
    "You can tune the tone here; some customers want formal, others want friendly and short.",
)
DEMO_REACTIONS = (
    "Oh, that's nice. Does it do that in Spanish too?",
    "Okay, that would save our agents a lot of time.",
    "Can the supervisor override the priority it picked?",
    "How long did it take to set that up for the customer you're showing?",
    "Our regionals would love that view.",
    "Interesting. And that's live data, not a sandbox?",
    "So the agent sees the whole thread before they call back?",
    "That's the part our maintenance team would care about.",
    "Can we customize the questions it asks?",
    "Hm, I'd want to see how it handles a really angry resident.",
    "That's cleaner than what we have now, for sure.",
)
CHECK_IN_LINES = (
    "Your teams answered most leads within two minutes last month, that's up from last quarter.",
    "I noticed a couple of properties barely use the maintenance module, is there a reason?",
    "We shipped the new reporting views, did your regional managers get a chance to look?",
    "I saw two support tickets about the {pms} sync last month, are those resolved for you?",
    "Anything your team keeps asking for that we should put on the roadmap?",
    "Usage at your newest community is ramping nicely.",
)
CHECK_IN_REPLIES = (
    "Overall it's going well, the leasing team relies on it now.",
    "The sync issues were annoying, but support fixed them quickly.",
    "Some of the older sites haven't really adopted it yet, to be honest.",
    "The reports are good, our asset managers use them in the monthly review.",
    "We'd love better Spanish support and a way to export conversations.",
    "Staff turnover means we keep having to retrain people on it.",
)
RENEWAL_LINES = (
    "Over the last year the assistant handled a big share of your after-hours leads.",
    "Your renewal is for {annual} a year on the {product} plan; the proposal includes a standard price adjustment.",
    "If you add the remaining properties now, the per-unit rate drops for the whole portfolio.",
    "We can keep the plan as is, or right-size it if some properties were sold.",
)
RENEWAL_REPLIES = (
    "The team likes it, so renewing is likely, but finance will look at the increase.",
    "We did sell a couple of properties, so the unit count should come down.",
    "I'd like to see the usage by property before we decide on the scope.",
    "Let me take it to our COO; she's been asking about the value we're getting.",
)
PRICING = (
    "The proposal is {price} per unit per month for {product}, which comes to about {annual} a year.",
    "For the full portfolio we're at {annual} annually, with onboarding included.",
    "If you sign for two years, we can hold the {price} rate and add the reporting module at no cost.",
    "The number in the proposal is {annual}; that includes support and the {pms} connector.",
)
PRICING_REPLIES = (
    "Okay, that's in the range we expected.",
    "I'll need to run that by finance.",
    "Can you break that down by property for me?",
    "That's helpful. What would the first-year cost be with a phased rollout?",
)
NEXT_STEPS = (
    "For next steps, I'll send a recap and set up a demo with your regional managers for {weekday}.",
    "I'll send the proposal by {weekday}; can we get thirty minutes on the calendar to review it?",
    "Let me get our solutions engineer and your IT lead together for the {pms} integration questions.",
    "I'll share two customer references in your region and follow up on {weekday}.",
    "I'll draft the pilot plan for one property and send it over before {weekday}.",
    "I'll loop in our security team and send the SOC 2 report under NDA.",
)
NEXT_STEP_REPLIES = (
    "Sounds good, send it over.",
    "{weekday} works for me.",
    "Great, I'll make sure the right people are on that call.",
    "Okay. I'll talk to the team internally and get back to you.",
    "That works, let's keep it moving.",
)
CLOSINGS = (
    "Thanks again, {contact_first}. Talk soon.",
    "Really appreciate your time today. Have a great rest of your week.",
    "Thanks, {contact_first}, this was helpful. I'll follow up by email.",
)
CLOSING_REPLIES = (
    "Thanks {rep_first}, talk soon.",
    "Thank you, bye now.",
    "Sounds good, take care.",
)
CITIES = {
    "Northeast": ("Boston", "Philadelphia", "Hartford", "Newark"),
    "Southeast": ("Atlanta", "Charlotte", "Tampa", "Nashville"),
    "Midwest": ("Chicago", "Columbus", "Minneapolis", "Kansas City"),
    "Southwest": ("Phoenix", "Dallas", "Austin", "Albuquerque"),
    "West": ("Denver", "Seattle", "San Diego", "Sacramento"),
    "Canada": ("Toronto", "Vancouver", "Calgary", "Montreal"),
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
OBJECTION_ACKS = (
    "Okay, that helps.",
    "I'd need to see that in writing.",
    "Fair enough, let's keep going.",
    "Hm. I'm not fully convinced, but okay.",
    "That's reassuring, actually.",
    "Let me think about that.",
    "Good to know. Our IT lead will want the details.",
    "Alright, put that in the recap please.",
)
